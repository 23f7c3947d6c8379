import json
import shlex

from beamline.runner.outcome import RunOutcome
from beamline.runner.summary import format_summary


def _outcome(**kw):
    base = dict(pipeline_name="penguin", run_id="r1", node_states={"Pusher": "complete"})
    base.update(kw)
    return RunOutcome(**base)


def test_blessed_push_prints_version_path_and_ready_to_paste_commands():
    text = format_summary(
        _outcome(
            blessed=True, pushed=True, pushed_version="17", pushed_path="/srv/p/17",
            serving_dir="/srv/p", sample_instance={"island": "Biscoe", "body_mass_g": 5200},
        )
    )
    assert "model blessed: yes" in text and "pushed: version 17 -> /srv/p/17" in text
    assert "beamline serve --model_name penguin --model_base_path /srv/p" in text
    # A run root's own serving directory is served with --root, which follows the labels.
    root_text = format_summary(_outcome(
        blessed=True, pushed=True, pushed_version="17", pushed_path="/r/serving/penguin/17",
        serving_dir="/r/serving/penguin"))
    assert "beamline serve --root /r --rest_api_port 8501" in root_text
    assert "--model_base_path" not in root_text
    curl = next(line for line in text.splitlines() if ":predict" in line)
    body = json.loads(shlex.split(curl)[3])
    assert body == {"instances": [{"island": "Biscoe", "body_mass_g": 5200}]}


def test_anomalies_fail_the_run_and_offer_no_serve_command():
    text = format_summary(
        _outcome(anomalies="[eval] feature 'species': bad", serving_dir="/srv/p")
    )
    assert "FAILED" in text and "feature 'species'" in text
    assert "beamline serve" not in text


def test_unblessed_model_says_nothing_was_pushed():
    assert "pushed: nothing (model not blessed)" in format_summary(_outcome(blessed=False))


def test_cached_pusher_reports_the_version_that_stays():
    text = format_summary(
        _outcome(node_states={"Pusher": "cached"}, blessed=True, pushed=True,
                 pushed_version="17", pushed_path="/srv/p/17")
    )
    assert "nothing new" in text and "version 17 stays" in text


def test_rows_left_out_for_a_missing_label_are_counted_and_none_says_nothing():
    text = format_summary(_outcome(blessed=True, rows_without_label=1234))
    assert "rows without a label: 1,234 (left out of training and evaluation)" in text
    for quiet in (None, 0):
        assert "rows without a label" not in format_summary(_outcome(rows_without_label=quiet))


def test_a_run_without_a_pusher_says_so_instead_of_pointing_at_one():
    text = format_summary(_outcome(node_states={"Trainer": "complete", "Evaluator": "complete"},
                                   blessed=False))
    assert "model blessed: no\n" in text and "why Pusher" not in text
    assert "pushed: nothing (this run has no Pusher; a sweep pushes with --push best)" in text
