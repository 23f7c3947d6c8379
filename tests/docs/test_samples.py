"""The sample outputs the docs show are found (tests/e2e/test_docs_against_a_run.py runs their
commands on a real run root), and their header lines compare across run roots: times, run
ids, paths and numbers are placeholders, the words are not."""

from __future__ import annotations

from pathlib import Path

from tests.docs.commands import normalized, samples, samples_in

PAGE = """Some text.

```console
$ beamline runs --pipeline penguin
RUN  PIPELINE  SPAN
2026-12-06T23:07:44.561564  penguin  -
$ beamline runs --json
```

```bash
beamline runs
```
"""


def test_a_console_block_s_commands_with_output_are_samples():
    [sample] = samples_in(Path("page.md"), PAGE)
    assert sample.shown.args == ("runs", "--pipeline", "penguin")
    assert sample.shown.line == 4
    assert sample.output == ("RUN  PIPELINE  SPAN", "2026-12-06T23:07:44.561564  penguin  -")
    assert sample.header == "RUN PIPELINE SPAN"


def test_header_lines_compare_without_what_changes_between_run_roots():
    assert normalized("Trainer in run 2026-11-26T09:12:40.118731 (penguin):") == normalized(
        "Trainer in run 2026-12-07T01:02:03.000001 (penguin):"
    )
    assert normalized(
        "Beamline UI on http://127.0.0.1:8470/ (store under /home/me/beamline_runs; read-only)"
    ) == normalized("Beamline UI on http://127.0.0.1:40123/ (store under /tmp/x/root; read-only)")
    assert normalized("RUN  PIPELINE  STARTED") != normalized("RUN  PIPELINE  SPAN  STARTED")


def test_the_runs_samples_of_get_started_and_lineage_are_found():
    where = {(s.shown.path.name, s.shown.args[0]) for s in samples()}
    assert {("get-started.md", "runs"), ("lineage.md", "runs"), ("lineage.md", "why")} <= where
