"""A tiny real TFX pipeline for the lineage tests (also runnable as a script for subprocess runs).

CsvExampleGen -> StatisticsGen, ImportSchemaGen (a fixed schema) -> ExampleValidator, and
Trainer (a module file whose run_fn saves a one-op SavedModel) -> Pusher (no blessing): every
kind of lineage step except the Evaluator, in about 15 s per run.

    python lineage_tiny_pipeline.py --root DIR --data DIR --module-dir DIR [--metadata URI]
"""

from __future__ import annotations

import argparse
from pathlib import Path

PIPELINE_NAME = "tiny"

MODULE_TEMPLATE = '''"""Trainer module of the tiny lineage pipeline."""
import tensorflow as tf

SCALE = {scale}


def run_fn(fn_args):
    class Scale(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def serve(self, x):
            return {{"y": x * SCALE}}

    module = Scale()
    signatures = {{"serving_default": module.serve}}
    tf.saved_model.save(module, fn_args.serving_model_dir, signatures=signatures)
'''


def write_data(data_dir: Path, rows: int = 120, extra: int = 0, seed: int = 0) -> Path:
    """A CSV with a numeric, a categorical and a label column (deterministic)."""
    import random

    rng = random.Random(seed)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "data.csv"
    lines = ["x,color,label"]
    for _ in range(rows):
        lines.append(
            f"{rng.random():.4f},{rng.choice(['red', 'green', 'blue'])},{rng.randint(0, 1)}"
        )
    for _ in range(extra):  # drifted rows: large x, a new category
        lines.append(f"{5 + rng.random():.4f},purple,1")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


SCHEMA = """
feature {
  name: "x" type: FLOAT presence { min_fraction: 1.0 min_count: 1 } shape { dim { size: 1 } }
}
feature {
  name: "color" type: BYTES domain: "color"
  presence { min_fraction: 1.0 min_count: 1 } shape { dim { size: 1 } }
}
feature {
  name: "label" type: INT presence { min_fraction: 1.0 min_count: 1 } shape { dim { size: 1 } }
}
string_domain { name: "color" value: "red" value: "green" value: "blue" }
"""


def write_schema(schema_dir: Path) -> Path:
    """The fixed schema ImportSchemaGen imports (colors: red, green, blue)."""
    schema_dir.mkdir(parents=True, exist_ok=True)
    path = schema_dir / "schema.pbtxt"
    path.write_text(SCHEMA, encoding="utf-8")
    return path


def write_module(module_dir: Path, scale: int = 1) -> Path:
    module_dir.mkdir(parents=True, exist_ok=True)
    path = module_dir / "trainer_module.py"
    path.write_text(MODULE_TEMPLATE.format(scale=scale), encoding="utf-8")
    return path


def create_pipeline(
    root: Path,
    data_dir: Path,
    module_file: Path,
    connection_config,
    name: str = PIPELINE_NAME,
    pusher_class: type | None = None,
):
    from tfx import v1 as tfx

    example_gen = tfx.components.CsvExampleGen(input_base=str(data_dir))
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.ImportSchemaGen(schema_file=str(write_schema(root / "schema")))
    validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    trainer = tfx.components.Trainer(
        module_file=str(module_file),
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(num_steps=1),
        eval_args=tfx.proto.EvalArgs(num_steps=1),
    )
    pusher = (pusher_class or tfx.components.Pusher)(
        model=trainer.outputs["model"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(
                base_directory=str(root / "serving" / name)
            )
        ),
    )
    return tfx.dsl.Pipeline(
        pipeline_name=name,
        pipeline_root=str(root / "pipelines" / name),
        components=[example_gen, statistics_gen, schema_gen, validator, trainer, pusher],
        enable_cache=True,
        metadata_connection_config=connection_config,
        beam_pipeline_args=[
            "--runner=DirectRunner",
            "--direct_running_mode=in_memory",
            "--direct_num_workers=1",
        ],
    )


def run(root: Path, data_dir: Path, module_file: Path, connection_config) -> None:
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    LocalDagRunner().run(create_pipeline(root, data_dir, module_file, connection_config))


def main() -> None:
    from beamline.settings import apply_tf_environment

    apply_tf_environment()
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--module-dir", type=Path, required=True)
    parser.add_argument("--metadata", default=None)
    args = parser.parse_args()
    from beamline.metadata.connection import connection_config

    config = connection_config(args.metadata, args.root / "metadata.sqlite")
    run(args.root, args.data, args.module_dir / "trainer_module.py", config)


if __name__ == "__main__":
    main()
