"""`beamline lineage VERSION` and the UI's model version page name the data and code versions
the model was trained on and give the checkout command that restores them; the command, run as
given, restores them byte for byte. Over a real SQLite MLMD store (tests/.../test_data_commands)."""

from __future__ import annotations

import json
import re
import shlex

from beamline.metadata import run_context as rc
from tests.beamline.models.conftest import PIPELINE, Store, mlmd  # noqa: F401 - fixture
from tests.beamline.versions.test_data_commands import (  # noqa: F401 - fixture
    FIRST_ROWS,
    beamline,
    runs,
    statistics,
)


def _run_printed(db: Store, command: str, target) -> None:  # noqa: F811
    """The printed command, DIR replaced by `target`, run through the CLI."""
    args = shlex.split(command.replace("--to DIR", f"--to {target}"))
    assert args[:3] == ["beamline", "data", "checkout"] and "--root" in args
    result = beamline(db, *args[1:])
    assert result.exit_code == 0, result.output


def test_lineage_names_the_versions_and_the_command_restores_them(runs, tmp_path):  # noqa: F811
    db, (first, _, _) = runs
    root = str(db.layout.root)
    result = beamline(db, "lineage", "stable", "--json")
    assert result.exit_code == 0, result.output
    versions = json.loads(result.output)["versions"]
    assert versions["run_id"] == "run-1" and versions["model_version"] == 100
    assert (versions["data_version"], versions["code_version"]) == (first.data.key,
                                                                     first.code.key)
    assert versions["in_store"] is True
    assert versions["checkout"] == (f"beamline data checkout --model 100 --pipeline {PIPELINE} "
                                    f"--to DIR --code --root {root}")
    _run_printed(db, versions["checkout"], tmp_path / "restored")
    assert (tmp_path / "restored" / "span-1" / "rows.csv").read_bytes() == FIRST_ROWS
    assert (tmp_path / "restored" / "code" / "components" / "module.py").is_file()

    text = beamline(db, "lineage", "100").output
    assert f"Data and code (kept by run run-1):\n  data version  {first.data.key}\n" in text
    assert f"  code version  {first.code.key}\n" in text
    assert f"  restore them: {versions['checkout']}" in text, text


def test_lineage_of_a_version_no_kept_run_pushed_says_so(runs):  # noqa: F811
    db, _ = runs
    db.push("run-0", 50)  # a run that kept no versions (--no-versions)
    result = beamline(db, "lineage", "50", "--json")
    assert result.exit_code == 0, result.output
    versions = json.loads(result.output)["versions"]
    assert versions["checkout"] is None and "--no-versions" in versions["why_none"]
    assert "Data and code: none kept: no run that kept" in beamline(db, "lineage", "50").output


def test_lineage_says_when_gc_deleted_the_versions(runs):  # noqa: F811
    db, (_, _, third) = runs
    ctx = db.store.get_context_by_type_and_name(rc.RUN_CONTEXT, "run-3")
    ctx.custom_properties[rc.DATA_VERSION].string_value = "../../etc/passwd"
    db.store.put_contexts([ctx])
    versions = json.loads(beamline(db, "lineage", "canary", "--json").output)["versions"]
    assert versions["in_store"] is False and "not a store key" in versions["problem"]
    from beamline.versions.store import ObjectStore

    objects = ObjectStore(db.layout.objects_dir)
    ctx.custom_properties[rc.DATA_VERSION].string_value = third.data.key
    db.store.put_contexts([ctx])
    objects.remove(third.data.key)
    text = beamline(db, "lineage", "300").output
    assert "not all in the store any more: `beamline gc` deleted them" in text, text


def test_the_model_page_names_the_versions_and_gives_the_command(runs, tmp_path):  # noqa: F811
    import html

    from beamline.ui.layout import model_url
    from tests.beamline.ui.test_ui_units import Served

    db, (first, _, _) = runs
    db.push("run-0", 50)
    served = Served(db.layout.root)
    try:
        page = served.get(model_url(PIPELINE, "100"))
        assert page.status_code == 200, page.text[:500]
        text = html.unescape(page.text)
        link = f'<a href="/data/{PIPELINE}/{first.data.key}" class="data-version-link">'
        assert f"Trained on data version {link}<code>{first.data.key}</code></a> and code " \
               f"version <code>{first.code.key}</code>, kept by run" in text
        [command] = [line.split("<code>")[1].split("</code>")[0] for line in text.split(
            '<pre id="checkout-command">')[1:]]
        assert command.startswith(
            "beamline data checkout --model 100 --pipeline p --to DIR --code --root ")
        _run_printed(db, command, tmp_path / "from-the-page")
        assert (tmp_path / "from-the-page" / "span-1" / "rows.csv").read_bytes() == FIRST_ROWS
        none = html.unescape(served.get(model_url(PIPELINE, "50")).text)
        assert 'id="no-data-version">None kept: no run that kept a data version' in none
    finally:
        served.close()


def test_the_data_version_page_shows_what_data_log_shows_and_restores_it(runs, tmp_path):  # noqa: F811
    import html

    from beamline.ui.layout import data_version_url
    from tests.beamline.ui.test_ui_units import Served

    db, (first, _, third) = runs
    statistics(db, "run-1", {"train": 2, "eval": 1})
    served = Served(db.layout.root)
    try:
        page = served.get(data_version_url(PIPELINE, first.data.key))
        assert page.status_code == 200, page.text[:500]
        text = html.unescape(page.text)
        facts = dict(re.findall(
            r'data-fact="[a-z]+"><span class="muted">([^<]+)</span><b>([^<]*)</b>', text))
        assert facts == {"Files": "2", "Bytes": f"{len(FIRST_ROWS) + 8:,}", "Rows": "3",
                         "Span": "-", "Runs": "2"}, facts
        assert first.data.manifest.files[0].sha256 in text
        assert '<a href="/runs/run-1"><code>run-1</code></a>' in text and "/runs/run-2" in text
        assert '<a href="/models/p/100">100</a></td><td>stable</td>' in text
        assert "/models/p/300" not in text  # trained on the other version
        [command] = [line.split("<code>")[1].split("</code>")[0] for line in text.split(
            '<pre id="checkout-command">')[1:]]
        assert command.startswith("beamline data checkout --run run-1 --to DIR --root ")
        _run_printed(db, command, tmp_path / "from-the-page")
        assert (tmp_path / "from-the-page" / "span-1" / "rows.csv").read_bytes() == FIRST_ROWS
        newer = html.unescape(served.get(data_version_url(PIPELINE, third.data.key)).text)
        assert "Rows not counted" in newer and '<a href="/models/p/300">300</a>' in newer
        missing = served.get(data_version_url(PIPELINE, "0" * 64))
        assert missing.status_code == 404 and "beamline data log p" in html.unescape(
            missing.text)
        assert served.get(data_version_url("other", first.data.key)).status_code == 404
    finally:
        served.close()
