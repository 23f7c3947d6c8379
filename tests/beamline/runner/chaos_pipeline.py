"""A tiny pipeline for the runner's kill -9 tests, run by Beamline's own runner.

The lineage tests' tiny pipeline (CsvExampleGen -> StatisticsGen, ImportSchemaGen ->
ExampleValidator; Trainer (a one-op SavedModel) -> Pusher), with the project's atomic pusher and
a Trainer module that can kill its process. Its data and module live in the directory
$BEAMLINE_CHAOS_DIR names (data/, module/), written by the test.

    python chaos_pipeline.py ROOT     # one run through beamline.runner.local.run_pipeline

$BEAMLINE_FAULT picks where the process kills itself (beamline/faults.py): `trainer:run_fn`
(inside the Trainer's executor), `push:copied`, `push:visible`. $BEAMLINE_CHAOS_HOG_MIB makes the
Trainer hold that much memory before it trains (the memory guards' tests).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lineage"))

import lineage_tiny_pipeline as tiny  # noqa: E402

PIPELINE_NAME = "chaos"
CHAOS_DIR_ENV = "BEAMLINE_CHAOS_DIR"

MODULE_TEMPLATE = '''"""Trainer module of the chaos pipeline."""
import os
import time

import tensorflow as tf

from beamline.faults import fault_point

SCALE = {scale}


def _hog():
    """Holds $BEAMLINE_CHAOS_HOG_MIB MiB, 64 MiB at a time, as a node outgrowing memory does;
    with $BEAMLINE_CHAOS_HOG_AT_ONCE, in one C call that holds the GIL throughout (as the
    in-memory Beam runner's do), then leaves a mark that it got that far."""
    mib = int(os.environ.get("BEAMLINE_CHAOS_HOG_MIB", "0"))
    if os.environ.get("BEAMLINE_CHAOS_HOG_AT_ONCE"):
        held = [b"x" * (mib << 20)]
        with open(os.path.join(os.environ["BEAMLINE_CHAOS_DIR"], "hog-done"), "w"):
            pass
        return held
    held = []
    for _ in range(mib // 64):
        held.append(b"x" * (64 << 20))  # written, so resident
        time.sleep(0.05)
    return held


def run_fn(fn_args):
    fault_point("trainer:run_fn")
    held = _hog()

    class Scale(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def serve(self, x):
            return {{"y": x * SCALE}}

    module = Scale()
    tf.saved_model.save(module, fn_args.serving_model_dir,
                        signatures={{"serving_default": module.serve}})
    del held
'''

def write_files(chaos_dir: Path, scale: int = 1) -> None:
    tiny.write_data(chaos_dir / "data", rows=60)
    (chaos_dir / "module").mkdir(parents=True, exist_ok=True)
    (chaos_dir / "module" / "trainer_module.py").write_text(
        MODULE_TEMPLATE.format(scale=scale), encoding="utf-8"
    )


def _dir() -> Path:
    return Path(os.environ[CHAOS_DIR_ENV])


def default_data_root() -> str:
    return str(_dir() / "data")


def create_pipeline(settings):
    """The lineage tests' tiny pipeline, with the project's atomic pusher."""
    from beamline_components.atomic_pusher.component import AtomicPusher

    return tiny.create_pipeline(
        Path(settings.pipeline_root).parents[1],
        Path(settings.data_root),
        _dir() / "module" / "trainer_module.py",
        settings.metadata_connection_config,
        name=settings.pipeline_name,
        pusher_class=AtomicPusher,
    )


def main() -> None:
    from beamline.runner.local import RunRequest, memory_budget, raise_for_outcome, run_pipeline
    from beamline.runner.supervisor import Watched, supervise
    from beamline.settings import RootLayout, resolve_root

    module = sys.modules[__name__]
    root = resolve_root(sys.argv[1])
    # As `beamline run` does: the run in a child, watched by a small parent process.
    report_fd = supervise(Watched(PIPELINE_NAME, RootLayout(root), None, memory_budget(None)))
    request = RunRequest(
        pipeline=PIPELINE_NAME, root=root, enable_tuning=False, fast_cache=False,
        report_fd=report_fd,
    )
    outcome = run_pipeline(request, module=module)
    print(f"pushed_version={outcome.pushed_version}")
    raise_for_outcome(outcome)


if __name__ == "__main__":
    main()
