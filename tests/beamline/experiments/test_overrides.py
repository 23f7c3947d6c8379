"""`beamline run --set`: parsing, the grid, checks against what a pipeline declares, the sweep."""

from __future__ import annotations

from pathlib import Path

import pytest

from beamline.errors import AnomaliesFound, BeamlineError, ConfigError
from beamline.experiments import overrides as ov
from beamline.experiments import sweep
from beamline.runner.local import RunRequest

DECLARED = {
    "train_steps": ov.Setting("train_steps", int, ov.SPEC_FIELD, minimum=1),
    "drop_rows_without_label": ov.Setting("drop_rows_without_label", bool, ov.SPEC_FIELD),
    **ov.hyperparameter_settings(
        {"units": [8, 16], "learning_rate": [0.003, 0.01], "activation": ["relu", "tanh"]},
        {"units": 16, "learning_rate": 0.01, "activation": "relu"},
    ),
}


def test_values_are_read_as_literals():
    assert [ov.literal(t) for t in ("3", "0.01", "1e-3", "TRUE", "false", "adam")] == [
        3, 0.01, 0.001, True, False, "adam"]


def test_sets_span_a_grid_in_the_order_given():
    axes = ov.parse_sets(["learning_rate=0.01, 0.1", "units=8,16", "train_steps=50"])
    assert axes == [("learning_rate", [0.01, 0.1]), ("units", [8, 16]), ("train_steps", [50])]
    grid = ov.variants(axes)
    assert len(grid) == 4
    assert grid[0] == {"learning_rate": 0.01, "units": 8, "train_steps": 50}
    assert grid[1] == {"learning_rate": 0.01, "units": 16, "train_steps": 50}
    assert ov.variants([]) == [{}]


@pytest.mark.parametrize(("text", "says"), [
    ("learning_rate", "write NAME=VALUE"),
    ("=3", "write NAME=VALUE"),
    ("units=", "gives units no value"),
    ("units=8,,16", "empty value between commas"),
])
def test_malformed_sets_say_how_to_write_them(text, says):
    with pytest.raises(ConfigError, match=says):
        ov.parse_sets([text])


def test_a_name_set_twice_is_refused():
    with pytest.raises(ConfigError, match="units is given twice.*units=V1,V2"):
        ov.parse_sets(["units=8", "units=16"])


def test_an_unknown_name_lists_the_closest_and_every_valid_one():
    with pytest.raises(ConfigError) as caught:
        ov.check({"learning_rat": 0.1}, DECLARED, "penguin")
    message = str(caught.value)
    assert "'learning_rat' is not a setting of this pipeline" in message
    assert "Did you mean 'learning_rate'?" in message
    assert ("spec fields drop_rows_without_label (true or false), train_steps (an integer at "
            "least 1); hyperparameters learning_rate (a number above 0), units (an integer at "
            "least 1)") in message
    # A hyperparameter that is not a number is not settable from the command line.
    assert "activation" not in message
    assert ConfigError.exit_code == 2


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("units", 0.5, "units=0.5 is not valid; units is a hyperparameter and takes an integer "
     "at least 1"),
    ("units", 0, "takes an integer at least 1"),
    ("learning_rate", 0, "learning_rate is a hyperparameter and takes a number above 0"),
    ("learning_rate", "fast", "learning_rate=fast is not valid"),
    ("train_steps", True, "train_steps is a spec field and takes an integer at least 1"),
    ("drop_rows_without_label", 1, "takes true or false"),
])
def test_a_bad_value_names_the_expected_type_and_range(name, value, expected):
    with pytest.raises(ConfigError, match=expected):
        ov.check({name: value}, DECLARED, "penguin")


def test_checked_values_take_their_setting_type():
    checked = ov.check({"learning_rate": 1, "units": 32, "drop_rows_without_label": False},
                       DECLARED, "penguin")
    assert checked == {"learning_rate": 1.0, "units": 32, "drop_rows_without_label": False}
    assert isinstance(checked["learning_rate"], float)


def _request(**changes):
    return RunRequest(pipeline="penguin", root=Path("/r"), **changes)


def test_a_sweep_is_one_experiment_and_its_first_run_checks_every_variant():
    grid = ov.variants(ov.parse_sets(["learning_rate=0.01,0.1", "units=8,16"]))
    planned = sweep.plan(_request(), grid)
    assert len(planned) == 4
    assert len({r.experiment for r in planned}) == 1
    assert planned[0].experiment.startswith("sweep-")
    assert planned[0].overrides == (("learning_rate", 0.01), ("units", 8))
    assert planned[0].check_also == tuple(r.overrides for r in planned[1:])
    assert all(not r.check_also for r in planned[1:])
    named = sweep.plan(_request(experiment="lr"), grid)
    assert {r.experiment for r in named} == {"lr"}
    # One run: no experiment unless named.
    assert sweep.plan(_request(), [{"units": 8}])[0].experiment is None


def test_a_sweep_refuses_one_run_id():
    grid = ov.variants(ov.parse_sets(["units=8,16"]))
    with pytest.raises(ConfigError, match="--run-id names one run, but the --set values give 2"):
        sweep.plan(_request(run_id="mine"), grid)


class _Outcome:
    def __init__(self, run_id):
        self.run_id = run_id


def test_a_failed_variant_does_not_stop_the_others_and_is_raised_at_the_end():
    planned = sweep.plan(_request(experiment="e"), [{"units": 8}, {"units": 16}, {"units": 32}])
    ran, said = [], []

    def run_one(request):
        ran.append(dict(request.overrides)["units"])
        if len(ran) == 2:
            raise AnomaliesFound("Run stopped at ExampleValidator: drift")
        return _Outcome(f"run-{len(ran)}")

    with pytest.raises(AnomaliesFound):
        sweep.run_all(planned, run_one, said.append)
    assert ran == [8, 16, 32]
    text = "\n".join(said)
    assert "experiment 'e', run 2 of 3: units=16" in text
    assert "run-1  units=8" in text and "run-3  units=32" in text
    assert "(failed)  units=16: Run stopped at ExampleValidator" in text
    assert "beamline experiments penguin --experiment e" in text


def test_a_check_failure_of_the_first_variant_stops_the_sweep():
    planned = sweep.plan(_request(), [{"units": 8}, {"units": -1}])
    ran = []

    def run_one(request):
        ran.append(request)
        raise ConfigError("units=-1 is not valid")

    with pytest.raises(ConfigError):
        sweep.run_all(planned, run_one, lambda line: None)
    assert len(ran) == 1


def test_a_sweep_s_variants_push_nothing_and_one_run_pushes_as_always():
    grid = ov.variants(ov.parse_sets(["units=8,16"]))
    assert [r.push for r in sweep.plan(_request(), grid)] == [False, False]
    assert [r.push for r in sweep.plan(_request(), grid, sweep.PUSH_BEST)] == [False, False]
    assert sweep.plan(_request(), [{"units": 8}])[0].push is True
    with pytest.raises(ConfigError, match="--push best chooses what a sweep pushes, and this "
                       "is one run"):
        sweep.plan(_request(), [{"units": 8}], sweep.PUSH_BEST)


def _rows(*specs):
    return [dict(run=run, blessed=blessed, **metrics) for run, blessed, metrics in specs]


def test_the_best_is_the_blessed_variant_best_by_the_headline_metric():
    rows = _rows(("a", True, {"auc": 0.90}), ("b", False, {"auc": 0.99}),
                 ("c", True, {"auc": 0.95}), ("d", True, {"auc": 0.95}))
    best, why = sweep.best_of(rows, "auc")
    assert best["run"] == "c"  # b scored higher but was not blessed; c ties d and ran first
    assert why == "auc 0.95, the highest of the 3 blessed variant(s) of 4"
    errors = _rows(("a", True, {"root_mean_squared_error": 3.0}),
                   ("b", True, {"root_mean_squared_error": 2.5}))
    best, why = sweep.best_of(errors, "root_mean_squared_error")
    assert best["run"] == "b" and "the lowest of the 2 blessed" in why
    assert sweep.best_of(_rows(("a", False, {"auc": 0.9})), "auc") == (
        None, "none of the 1 variants was blessed")


def test_push_best_runs_the_best_variant_again_with_its_pusher():
    planned = sweep.plan(_request(experiment="e"), [{"units": 8}, {"units": 16}],
                         sweep.PUSH_BEST)
    done = [(planned[0], "r1"), (planned[1], "r2")]
    rows = _rows(("r1", True, {"auc": 0.9}), ("r2", True, {"auc": 0.93}))
    ran, said = [], []
    sweep.push_best(done, lambda ids: [r for r in rows if r["run"] in ids],
                    lambda rows: "auc", ran.append, said.append)
    [again] = ran
    assert again.push is True and again.overrides == (("units", 16),) and again.experiment == "e"
    assert said == ["beamline: --push best: run r2 (units=16): auc 0.93, the highest of the 2 "
                    "blessed variant(s) of 2; running it again with its Pusher (every other "
                    "node from the cache)"]
    ran.clear()
    said.clear()
    sweep.push_best(done, lambda ids: _rows(("r1", False, {}), ("r2", False, {})),
                    lambda rows: None, ran.append, said.append)
    assert ran == [] and said == [
        "beamline: --push best: none of the 2 variants was blessed; nothing pushed"]


def test_jobs_must_be_at_least_one():
    assert sweep.check_jobs(1) == 1 and sweep.check_jobs(4) == 4
    with pytest.raises(ConfigError, match="--jobs 0: a sweep runs at least one variant"):
        sweep.check_jobs(0)


# A child variant as a real process: it prints a line naming its run id, or fails as `beamline
# run` does (an `error:` line, the error's exit code) for units=16.
_CHILD = (
    "import sys\n"
    "units = sys.argv[1]\n"
    "if units == '16':\n"
    "    sys.stderr.write('error: Run stopped at ExampleValidator: drift\\n'); sys.exit(4)\n"
    "print('child ran units=' + units + ' as ' + sys.argv[2])\n"
)


def test_jobs_run_the_first_variant_alone_then_the_others_here_and_in_child_processes(tmp_path):
    import os
    import sys
    import time

    planned = sweep.plan(_request(experiment="e"),
                         [{"units": u} for u in (8, 16, 32, 64, 128)])
    here, said = [], []

    def run_one(request):
        units = dict(request.overrides)["units"]
        here.append(units)
        time.sleep(0.3)  # a run takes a while: the child processes take variants meanwhile
        if units == 16:
            raise BeamlineError("Run stopped at ExampleValidator: drift", exit_code=4)
        return _Outcome(f"here-{units}")

    with open(tmp_path / "kept", "w") as kept:
        child = sweep.ChildRun(
            lambda request, run_id: [sys.executable, "-c", _CHILD,
                                     str(dict(request.overrides)["units"]), run_id],
            tmp_path, dict(os.environ), kept.fileno())
        done = []
        with pytest.raises(BeamlineError) as failed:
            sweep.run_all(planned, run_one, said.append, then=done.extend, jobs=2,
                          child=child)
    assert failed.value.exit_code == 4 and "drift" in str(failed.value)
    assert here[0] == 8  # the first variant alone, here: it runs the shared nodes
    in_children = {16, 32, 64, 128} - set(here)
    assert in_children and len(here) + len(in_children) == 5
    text = "\n".join(said)
    assert text.count("(in a child process)") == len(in_children)
    # Every variant reported once, in grid order; `then` gets the ones that succeeded, with
    # the run id each claimed (a child's: the one its command line gave it).
    summary = said[-1].splitlines()
    assert [line.split()[-1] for line in summary[1:-1]] == [
        "units=8", "drift", "units=32", "units=64", "units=128"]
    assert [dict(r.overrides)["units"] for r, _ in done] == [8, 32, 64, 128]
    for request, run_id in done:
        units = dict(request.overrides)["units"]
        if units in here:
            assert run_id == f"here-{units}"
        else:
            assert f"child ran units={units} as {run_id}" in text
    assert len({run_id for _, run_id in done}) == 4
