"""TFX's Tuner, keeping every trial: TFX runs the search in the execution's temporary directory
and removes it afterwards, with KerasTuner's records of each trial; this Tuner copies them into
its `tuner_results` output first (beamline/lineage/trials.py reads them back)."""
