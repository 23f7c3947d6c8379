"""Data and code versions on the shared penguin runs: each run kept its input and code, an
unchanged re-run kept nothing new, and a checkout gives the bytes lineage recorded."""

from __future__ import annotations

import hashlib
import json

from beamline.metadata import run_context as rc
from beamline.versions.store import ObjectStore
from tests.e2e.conftest import beamline, penguin_rows


def test_every_penguin_run_names_the_same_kept_data_and_code(penguin_run):
    store = penguin_run.store()
    runs = (penguin_run.first, penguin_run.rerun, penguin_run.fast_rerun)
    keys = set()
    for run in runs:
        props = rc.properties_of(store.get_context_by_type_and_name(rc.RUN_CONTEXT, run.run_id))
        keys.add((props.get(rc.DATA_VERSION), props.get(rc.CODE_VERSION)))
    [(data_key, code_key)] = keys
    objects = ObjectStore(penguin_run.layout.objects_dir)
    assert objects.has(data_key) and objects.has(code_key)
    assert "new bytes kept" in penguin_run.first.stdout
    # Unchanged re-runs, through TFX's cache and through the fast path, add nothing.
    for run in runs[1:]:
        assert f"data version {data_key[:12]}" in run.stdout
        assert "nothing new to keep" in run.stdout, run.stdout


def test_a_checkout_of_the_first_run_matches_the_sha256_lineage_recorded(penguin_run, tmp_path):
    root = str(penguin_run.root)
    log = beamline("data", "log", "penguin", "--root", root, "--json")
    assert log.returncode == 0, log.stderr
    [version] = [v for v in json.loads(log.stdout)["data_versions"]
                 if v["first_run"]["run_id"] == penguin_run.first.run_id]
    [model] = version["models"]
    # Rows as the run's StatisticsGen counted them (train + eval): every row of the CSV.
    assert version["rows"] == len(penguin_rows()[1])
    lineage = beamline("lineage", str(model["version"]), "--root", root, "--json")
    assert lineage.returncode == 0, lineage.stderr
    recorded = {f["path"].rsplit("/", 1)[-1]: f["sha256"]
                for s in json.loads(lineage.stdout)["sources"] for f in s["files"]}
    target = tmp_path / "restored"
    checkout = beamline("data", "checkout", "--run", penguin_run.first.run_id, "--to",
                        str(target), "--code", "--root", root)
    assert checkout.returncode == 0, checkout.stderr
    restored = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in target.glob("*.csv")}
    assert restored == recorded == {"penguins.csv": recorded["penguins.csv"]}
    assert (target / "code" / "pipelines" / "penguin.py").is_file()
    assert (target / "code" / "components" / "penguin" / "model" / "module.py").is_file()
    again = beamline("data", "checkout", "--run", penguin_run.first.run_id, "--to",
                     str(target), "--root", root)
    assert again.returncode == 2 and "not an empty directory" in again.stderr
    assert beamline("data", "verify", "--root", root).returncode == 0
