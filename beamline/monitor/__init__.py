"""`beamline monitor`: logged traffic against the data that trained the model answering it.

window.py reads request logs into rows, lineage.py finds each version's training statistics and
schema, thresholds.py holds the comparators and defaults, compare.py runs TFDV, record.py writes
the monitoring execution to MLMD, table.py prints the verdicts.
"""
