"""The docs against a real run root (the shared penguin runs): every sample output the docs
show is the output of its command, header line for header line; the documented lineage of a
source file names a file that exists; `beamline serve`'s ready line gives a curl that, pasted
into a shell, gets a prediction."""

from __future__ import annotations

import json
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.docs.commands import ROOT, Sample, normalized, samples
from tests.e2e.conftest import beamline
from tests.serving.support import free_port

# A sample that lists a named experiment runs where that experiment was swept
# (tests/e2e/test_experiment_sweep.py); the others run on the shared penguin runs.
SWEEP_SAMPLES = [s for s in samples() if "--experiment" in s.shown.args]
SAMPLES = [s for s in samples() if s not in SWEEP_SAMPLES]
# The commands whose documented output this test reproduces on a run root. A sample of any
# other command fails here: add the way to run it.
READERS = {"runs", "why", "lineage", "models", "labels", "diff", "pipelines", "experiments"}
SERVERS = {"ui"}
READY_SECONDS = 300.0
# A file the lineage guide traces forward: the penguin data a fresh checkout's .venv holds.
DOCUMENTED_DATA = ".venv/lib/python3.10/site-packages/palmerpenguins/data/penguins.csv"


def _on_root(args: tuple[str, ...], root: Path) -> list[str]:
    """The documented command line, pointed at `root` instead of the one it names."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--root":
            skip = True
        elif not arg.startswith("--root="):
            out.append(arg)
    return [*out, "--root", str(root)]


def _first_line_of_server(args: list[str]) -> str:
    """A server command's first line on stdout, then the server stopped."""
    process = subprocess.Popen(
        [sys.executable, "-m", "beamline", *args], stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], READY_SECONDS)
        assert ready, f"`beamline {' '.join(args)}` printed nothing in {READY_SECONDS:.0f}s"
        return process.stdout.readline()
    finally:
        process.terminate()
        process.wait(60)


def test_the_docs_show_sample_outputs_of_the_runs_and_why_commands():
    shown = {sample.shown.args[0] for sample in SAMPLES}
    assert {"runs", "why"} <= shown, "the sample extractor found too few: is it broken?"
    assert {s.shown.args[0] for s in SAMPLES} <= READERS | SERVERS


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: str(sample.shown))
def test_a_documented_sample_output_starts_as_the_command_s_real_output(sample: Sample,
                                                                        penguin_run):
    assert_sample_on_root(sample, penguin_run.root)


def assert_sample_on_root(sample: Sample, root: Path) -> None:
    """The command of `sample`, run on `root`, prints first the header line the docs show."""
    args = _on_root(sample.shown.args, root)
    if args[0] in SERVERS:
        first = _first_line_of_server([*args, "--port", "0"])
    else:
        result = beamline(*args)
        assert result.returncode == 0, result.stderr
        first = result.stdout.splitlines()[0]
    assert normalized(first) == sample.header, f"{sample.shown}: the docs show\n" \
        f"  {sample.output[0]}\nbut the command prints\n  {first}"


def test_the_documented_data_file_is_traced_forward_to_the_pushed_version(penguin_run):
    lineage_guide = (ROOT / "docs" / "guides" / "lineage.md").read_text(encoding="utf-8")
    assert f"beamline lineage {DOCUMENTED_DATA}" in lineage_guide
    assert (ROOT / DOCUMENTED_DATA).is_file()
    result = beamline("lineage", str(ROOT / DOCUMENTED_DATA), "--root", str(penguin_run.root),
                      "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["models"], "no model built from the penguin data"


def test_the_ready_line_s_curl_pasted_into_a_shell_gets_a_prediction(penguin_run, tmp_path):
    rest, grpc = free_port(), free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "beamline", "serve", "--root", str(penguin_run.root),
             "--rest_api_port", str(rest), "--port", str(grpc)],
            stdout=subprocess.DEVNULL, stderr=stderr,
        )
    try:
        command = _ready_curl(server, log)
        assert f"http://127.0.0.1:{rest}/v1/models/penguin:predict" in command
        answer = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                                timeout=60)
        assert answer.returncode == 0, answer.stderr
        [prediction] = json.loads(answer.stdout)["predictions"]
        assert prediction
    finally:
        server.terminate()
        assert server.wait(120) == 0, log.read_text()


def _ready_curl(server: subprocess.Popen, log: Path) -> str:
    ready = re.compile(r"beamline serve: ready \(pid \d+\): REST on \S+, gRPC on \S+; "
                       r"try: (curl .*)$", re.MULTILINE)
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        match = ready.search(log.read_text())
        if match:
            return match.group(1)
        assert server.poll() is None, log.read_text()
        time.sleep(0.2)
    raise AssertionError(f"no ready line in {READY_SECONDS:.0f}s:\n{log.read_text()}")
