"""ExampleValidator that fails its execution when it finds anomalies.

Declared as a pipeline node, so the stop happens on every orchestrator (local, Kubeflow, Vertex):
downstream Tuner/Trainer/Evaluator/Pusher never run on data that broke the contract.
"""
