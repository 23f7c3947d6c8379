"""`beamline loop`: continuous training. Each step monitors the traffic logged since the last
step, decides by a policy whether to retrain, runs the pipeline on the newest span, delivers a
blessed model under the push policy and records why in ML Metadata.

policy.py decides (pure), triggers.py records decisions (beamline.Trigger executions),
served.py finds what serves and the span it trained on, step.py runs one step, delivery.py
pushes under a policy, retry.py names and retries transient errors, loop.py repeats steps,
lineage.py shows "Triggered by monitoring #N" in `beamline lineage`.
"""
