"""The target rules on hand-made PipelineSpecs: what each orchestrator runs, and wiring."""

from __future__ import annotations

import copy

import pytest

from beamline.deploy import spec_rules
from beamline.errors import ConfigError

MODEL = {"artifactType": {"instanceSchema": "title: tfx.Model\ntype: object\n"}}
CONTAINER = {"container": {"image": "img:1", "command": ["python"], "args": []}}


def _spec() -> dict:
    """Trainer -> resolver -> Evaluator, a root parameter, as TFX writes them."""
    return {
        "root": {
            "inputDefinitions": {"parameters": {"steps": {"type": "INT"}}},
            "dag": {
                "tasks": {
                    "Trainer": {
                        "componentRef": {"name": "Trainer"},
                        "inputs": {"parameters": {"steps": {"componentInputParameter": "steps"}}},
                    },
                    "baseline": {
                        "componentRef": {"name": "baseline"},
                        "dependentTasks": ["Trainer"],
                    },
                    "Evaluator": {
                        "componentRef": {"name": "Evaluator"},
                        "dependentTasks": ["Trainer", "baseline"],
                        "inputs": {
                            "artifacts": {
                                "model": {"taskOutputArtifact": {
                                    "producerTask": "Trainer", "outputArtifactKey": "model"}},
                                "baseline_model": {"taskOutputArtifact": {
                                    "producerTask": "baseline", "outputArtifactKey": "model"}},
                            },
                            "parameters": {"eval_config": {"runtimeValue": {
                                "constantValue": {"stringValue": "{}"}}}},
                        },
                    },
                }
            },
        },
        "components": {
            "Trainer": {
                "executorLabel": "Trainer_executor",
                "inputDefinitions": {"parameters": {"steps": {"type": "INT"}}},
                "outputDefinitions": {"artifacts": {"model": MODEL}},
            },
            "baseline": {
                "executorLabel": "baseline_executor",
                "outputDefinitions": {"artifacts": {"model": MODEL}},
            },
            "Evaluator": {
                "executorLabel": "Evaluator_executor",
                "inputDefinitions": {
                    "artifacts": {"model": MODEL, "baseline_model": MODEL},
                    "parameters": {"eval_config": {"type": "STRING"},
                                   "module_file": {"type": "STRING", "isOptional": True}},
                },
            },
        },
        "deploymentSpec": {
            "executors": {
                "Trainer_executor": copy.deepcopy(CONTAINER),
                "baseline_executor": {"resolver": {"outputArtifactQueries": {}}},
                "Evaluator_executor": copy.deepcopy(CONTAINER),
            }
        },
    }


def _tasks(spec, tasks=None):
    return spec["root"]["dag"]["tasks"] if tasks is None else tasks


def test_a_resolver_task_is_refused_for_kubeflow_and_runs_on_vertex():
    spec = _spec()
    assert spec_rules.check(spec, "vertex") == []
    [violation] = spec_rules.check(spec, "kubeflow")
    assert (violation.task, violation.rule) == ("baseline", "executor")
    with pytest.raises(ConfigError, match=r"task 'baseline' cannot run there: its executor is a "
                       r"resolver, and kubeflow runs only container and importer executors"):
        spec_rules.raise_for(spec_rules.check(spec, "kubeflow"), "penguin", "kubeflow")


def test_a_lifecycle_hook_is_refused_for_kubeflow_only():
    spec = _spec()
    spec["deploymentSpec"]["executors"]["baseline_executor"] = copy.deepcopy(CONTAINER)
    spec["deploymentSpec"]["executors"]["Trainer_executor"]["container"]["lifecycle"] = {
        "preCacheCheck": {"command": ["python", "-m", "driver"]}
    }
    assert spec_rules.check(spec, "vertex") == []
    [violation] = spec_rules.check(spec, "kubeflow")
    assert (violation.task, violation.rule) == ("Trainer", "lifecycle")
    assert "preCacheCheck" in violation.message


def test_a_cached_example_gen_is_refused_for_kubeflow_only():
    spec = _spec()
    spec["deploymentSpec"]["executors"]["baseline_executor"] = copy.deepcopy(CONTAINER)
    spec["components"]["Trainer"]["inputDefinitions"]["parameters"].update(
        input_base={"type": "STRING"}, input_config={"type": "STRING"}
    )
    trainer = _tasks(spec)["Trainer"]
    trainer["inputs"]["parameters"].update(
        input_base={"runtimeValue": {"constantValue": {"stringValue": "gs://b/data"}}},
        input_config={"runtimeValue": {"constantValue": {"stringValue": "{}"}}},
    )
    assert spec_rules.check(spec, "kubeflow") == []  # TFX leaves cachingOptions out when off
    trainer["cachingOptions"] = {"enableCache": True}
    assert spec_rules.check(spec, "vertex") == []
    [violation] = spec_rules.check(spec, "kubeflow")
    assert (violation.task, violation.rule) == ("Trainer", "caching")


def _wiring(spec, target="vertex"):
    return [(v.task, v.message) for v in spec_rules.check(spec, target) if v.rule == "wiring"]


def test_an_input_from_a_task_not_in_the_pipeline_names_both():
    spec = _spec()
    del _tasks(spec)["baseline"]
    problems = _wiring(spec)
    assert ("Evaluator", "its input 'baseline_model' is read from task 'baseline', which is not "
            "in the pipeline") in problems
    assert ("Evaluator", "it depends on task 'baseline', which is not in the pipeline") in problems


def test_an_output_the_producer_does_not_declare_is_a_violation():
    spec = _spec()
    source = _tasks(spec)["Evaluator"]["inputs"]["artifacts"]["model"]["taskOutputArtifact"]
    source["outputArtifactKey"] = "pushed"
    assert _wiring(spec) == [("Evaluator", "its input 'model' is read from output 'pushed' of "
                              "task 'Trainer', which has no such output")]


def test_a_required_input_given_by_nothing_and_an_undeclared_parameter():
    spec = _spec()
    del _tasks(spec)["Evaluator"]["inputs"]["parameters"]["eval_config"]
    spec["root"]["inputDefinitions"]["parameters"] = {}
    assert _wiring(spec) == [
        ("Trainer", "its input 'steps' is read from pipeline parameter 'steps', which is not "
                    "declared"),
        ("Evaluator", "its required input 'eval_config' is given by nothing (no upstream task, "
                      "no parameter)"),
    ]


def test_an_input_the_component_does_not_take_and_a_missing_component():
    spec = _spec()
    _tasks(spec)["Evaluator"]["inputs"]["parameters"]["schema"] = {
        "runtimeValue": {"constantValue": {"stringValue": "x"}}
    }
    _tasks(spec)["baseline"]["componentRef"]["name"] = "gone"
    assert _wiring(spec) == [
        ("baseline", "its component 'gone' does not exist"),
        ("Evaluator", "it passes parameter 'schema', which component 'Evaluator' does not take"),
        ("Evaluator", "its input 'baseline_model' is read from output 'model' of task "
                      "'baseline', which has no such output"),
    ]


def test_a_cycle_is_named():
    spec = _spec()
    _tasks(spec)["Trainer"]["dependentTasks"] = ["Evaluator"]
    [(task, message)] = _wiring(spec)
    assert message == "its tasks form a cycle: Evaluator -> Trainer -> Evaluator"


def test_the_guide_states_each_targets_rules_as_the_validator_checks_them():
    from tests.docs.commands import ROOT
    from tests.docs.test_reference_tables import code_spans, table_rows

    rows = {row[0]: row[1:] for row in table_rows(ROOT / "docs" / "guides" / "kubeflow-vertex.md")}
    header = [code_spans(cell)[0].removeprefix("--target ") for cell in rows["rule"]]
    for target, executors, lifecycle in zip(
        header, rows["executors"], rows["container `lifecycle` hooks"], strict=True
    ):
        rules = spec_rules.RULES[target]
        assert set(code_spans(executors)) == rules.executors, target
        assert lifecycle.startswith("run") == rules.runs_lifecycle, target
    for target, caching in zip(header, rows["cache of a file-based ExampleGen"], strict=True):
        assert caching.startswith("allowed") == spec_rules.RULES[target].caches_file_inputs
