"""The run-context schema: reading blessing and push the same way for runner and lineage."""

from __future__ import annotations

from ml_metadata.proto import metadata_store_pb2 as pb

from beamline.lineage.model import FINISHED_STATES
from beamline.metadata import run_context as rc
from beamline.runner import scheduler


def _artifact(**props) -> pb.Artifact:
    art = pb.Artifact()
    for key, value in props.items():
        if isinstance(value, int):
            art.custom_properties[key].int_value = value
        else:
            art.custom_properties[key].string_value = value
    return art


def test_blessing_and_push_read_from_artifact_properties():
    assert rc.blessed_from(rc.properties_of(_artifact(blessed=1))) is True
    assert rc.blessed_from(rc.properties_of(_artifact(blessed=0))) is False
    assert rc.blessed_from(rc.properties_of(_artifact())) is None
    pushed = _artifact(pushed=1, pushed_version="1700000000", pushed_destination="/s/p/1700000000")
    assert rc.push_from(rc.properties_of(pushed)) == ("1700000000", "/s/p/1700000000")
    assert rc.push_from(rc.properties_of(_artifact(pushed=0))) is None


def test_every_mlmd_state_maps_to_a_runner_state():
    names = {pb.Execution.State.Name(v) for v in pb.Execution.State.values()} - {"UNKNOWN"}
    assert names == set(rc.NODE_STATE_OF_EXECUTION)
    assert set(rc.NODE_STATE_OF_EXECUTION.values()) <= {
        scheduler.RUNNING, scheduler.COMPLETE, scheduler.CACHED, scheduler.FAILED
    }
    assert set(FINISHED_STATES) == {rc.ExecutionState.COMPLETE, rc.ExecutionState.CACHED}


def test_module_digest_key_is_what_why_reads():
    from beamline.lineage.why import module_fingerprint

    digest = "ab" * 32
    assert module_fingerprint({rc.MODULE_SHA256_KEY: digest}) == digest


def test_a_kfp_custom_prefixed_property_reads_as_its_name():
    # What TFX's Kubeflow v2 entry point records for an Examples artifact's span.
    examples = pb.Artifact()
    examples.custom_properties["custom:span"].int_value = 2
    examples.custom_properties["split_names"].string_value = '["train", "eval"]'
    props = rc.properties_of(examples)
    assert props["span"] == 2 and props["custom:span"] == 2
    # A property recorded under its own name wins over a prefixed one.
    examples.properties["span"].int_value = 3
    assert rc.properties_of(examples)["span"] == 3
