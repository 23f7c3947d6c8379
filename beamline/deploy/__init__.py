"""Production orchestrators: compile for Kubeflow Pipelines v2 / Vertex AI, and submit.

- `compile`: a TFX pipeline -> KFP v2 `PipelineJob` JSON via TFX's KubeflowV2DagRunner.
- `submit`: that JSON -> a run on Kubeflow Pipelines (kfp's Client) or Vertex AI (PipelineJob).
- `secrets`: secret references that are resolved in the container at run time, never compiled in.
- `entrypoint`: the container entrypoint that resolves those references before a TFX step runs.

Nothing here imports TFX, kfp or Google Cloud at module import time.
"""
