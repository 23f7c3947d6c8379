"""`beamline init --data --label`: the project generated from a table, and the tables it refuses
before writing anything (no pipeline runs: the end-to-end test runs generated projects)."""

from __future__ import annotations

import ast
import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from beamline.cli import cli
from beamline.errors import ConfigError, DataError
from beamline.scaffold import init_from_data


def _write(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _customers(path: Path, n: int = 60) -> Path:
    rows = [
        [f"c{i:04d}", 20 + i % 40, ["basic", "pro", ""][i % 3], 100.0 + i * 1.5,
         "yes" if i % 4 == 0 else ("" if i % 13 == 0 else "no")]
        for i in range(n)
    ]
    return _write(path, ["customer_id", "age", "plan", "spend", "churned"], rows)


def _module_names(source: str) -> dict:
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return found


def test_a_table_becomes_a_project_whose_files_state_each_decision(tmp_path):
    table = _customers(tmp_path / "customers.csv")
    root, described = init_from_data(tmp_path / "churn", table, "churned")
    assert described.name == "customers" and described.decision.task == "binary"
    assert described.decision.positive == "yes"  # the rarer value
    assert described.labelled_rows == described.rows - 3  # rows 13, 26, 39 have no label
    transform = (root / "components/customers/transform/module.py").read_text()
    model = (root / "components/customers/model/module.py").read_text()
    pipeline = (root / "pipelines/customers.py").read_text()
    for source in (transform, model, pipeline):
        compile(source, "generated", "exec")
    t, p = _module_names(transform), _module_names(pipeline)
    assert t["NUMERIC_FEATURES"] == ("age", "spend")
    assert t["CATEGORICAL_FEATURES"] == ("plan",)
    assert t["POSITIVE_CLASS"] == "yes" and t["LABEL_KEY"] == "churned"
    assert "customer_id: 60 distinct values in 60 rows: an id or free text" in transform
    assert set(p["SAMPLE_INSTANCE"]) == {"age", "plan", "spend"}
    bounds = dict(p["BLESS_BOUNDS"])
    assert bounds["auc"] > 0.5 and bounds["binary_accuracy"] > 0.7
    schema = (root / "schemas/customers/schema.pbtxt").read_text()
    assert "Rules Beamline applied" in schema and 'not_in_environment: "SERVING"' in schema
    assert (root / "tests/test_sample_instance.py").is_file()
    assert "[tool.beamline]" in (root / "pyproject.toml").read_text()


def test_spans_are_read_together_and_the_pipeline_reads_them_as_spans(tmp_path):
    _customers(tmp_path / "data/span-1/a.csv", 40)
    _customers(tmp_path / "data/span-2/a.csv", 40)
    _, described = init_from_data(tmp_path / "p", tmp_path / "data", "churned", name="churn")
    assert described.rows == 80 and described.span_pattern == "span-{SPAN}/*.csv"
    pipeline = (tmp_path / "p/pipelines/churn.py").read_text()
    assert "SPAN_PATTERN = 'span-{SPAN}/*.csv'" in pipeline


@pytest.mark.parametrize(
    ("label", "rows", "says"),
    [
        ("churn", 60, "Did you mean 'churned'?"),
        ("churned", 20, "needs at least 30"),
    ],
)
def test_a_table_init_cannot_use_is_refused_before_anything_is_written(tmp_path, label, rows,
                                                                       says):
    table = _customers(tmp_path / "customers.csv", rows)
    with pytest.raises(DataError, match=says):
        init_from_data(tmp_path / "project", table, label)
    assert not (tmp_path / "project").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["customers.csv"]  # no staging left


def test_a_column_name_tensorflow_cannot_take_is_named_with_a_fix(tmp_path):
    table = _write(tmp_path / "t.csv", ["mean radius", "y"], [[i, i % 2] for i in range(40)])
    with pytest.raises(DataError, match=r"'mean radius'.*e\.g\. 'mean_radius'"):
        init_from_data(tmp_path / "project", table, "y")


def test_a_parquet_column_of_lists_is_named(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"tags": [["a", "b"]] * 40, "x": range(40), "y": [0, 1] * 20})
    frame.to_parquet(tmp_path / "t.parquet")
    with pytest.raises(DataError, match="'tags'.*lists or nested values"):
        init_from_data(tmp_path / "project", tmp_path / "t.parquet", "y")


def test_the_cli_says_what_it_decided_and_refuses_mixed_options(tmp_path):
    table = _customers(tmp_path / "customers.csv")
    runner = CliRunner()
    result = runner.invoke(cli, ["init", str(tmp_path / "p"), "--data", str(table),
                                 "--label", "churned", "--task", "multiclass"])
    assert result.exit_code == 0, result.output
    assert "task: multiclass, because --task multiclass" in result.output
    assert "left out: customer_id" in result.output
    assert "rows without a 'churned' value: 3" in result.output
    mixed = runner.invoke(cli, ["init", str(tmp_path / "q"), "--data", str(table),
                                "--label", "churned", "--template", "taxi"])
    # cli.main prints a BeamlineError as one paragraph and exits with its code (2 here).
    assert isinstance(mixed.exception, ConfigError) and "not both" in str(mixed.exception)
    no_label = runner.invoke(cli, ["init", str(tmp_path / "r"), "--data", str(table)])
    assert isinstance(no_label.exception, ConfigError)
    assert "--label COLUMN" in str(no_label.exception) and no_label.exception.exit_code == 2
    assert not (tmp_path / "q").exists() and not (tmp_path / "r").exists()
