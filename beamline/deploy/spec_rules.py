"""What each compile target runs, checked on a compiled KFP v2 PipelineSpec (as a dict).

Pure: no TFX, kfp or network. `beamline compile` runs `check` on every spec it writes, and a
violation stops it with one paragraph naming the task. The rules come from the orchestrators'
sources:

- Executors. Open-source Kubeflow Pipelines compiles a task only when its executor is a
  container or an importer (kubeflow/pipelines backend/src/v2/compiler/visitor.go: anything
  else is "non-container and non-importer executor not implemented"). Vertex AI Pipelines also
  runs the `resolver` executors TFX writes for LatestArtifactStrategy and
  LatestBlessedModelStrategy resolvers (tfx/orchestration/kubeflow/v2/step_builder.py).
- Lifecycle hooks. TFX puts a file-based ExampleGen's driver (span and version resolution, the
  input fingerprint) in its container's `lifecycle.pre_cache_check`
  (step_builder.py, `_build_file_based_example_gen_spec`). Vertex runs it before its cache
  check; KFP's backend reads no container lifecycle at all (nothing under backend/src/v2 does),
  so on Kubeflow a hook is work that silently never happens.
- Caching of file inputs. KFP keys its cache on a task's parameters, input artifact names,
  image and command (kubeflow/pipelines backend/src/v2/cacheutils/cache.go, GenerateCacheKey),
  never on the files an ExampleGen's `input_base`/`input_config` pattern matches; a cached
  ExampleGen would reuse old examples after new files arrived. On Kubeflow a task taking those
  two parameters (a file-based ExampleGen) must have its cache off. On Vertex the driver's
  fingerprint of the files keeps the cache honest.
- Wiring. Every input a task reads is produced upstream or is a pipeline parameter: a task
  output names a task of the same DAG and an output its component declares, a component input
  names a root input, every required input of the component is given, no task depends on a
  task that does not exist, and the tasks form no cycle.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from beamline.errors import ConfigError


@dataclass(frozen=True)
class TargetRules:
    """What an orchestrator runs of a PipelineSpec."""

    target: str
    # Executor kinds (the oneof in deploymentSpec.executors) the orchestrator can run.
    executors: frozenset[str]
    # Whether it runs a container's lifecycle hooks (TFX's ExampleGen driver).
    runs_lifecycle: bool
    # Whether its cache key sees the files a file-based ExampleGen reads (through the driver's
    # fingerprint); without it such a task must not be cached.
    caches_file_inputs: bool


RULES: dict[str, TargetRules] = {
    "kubeflow": TargetRules(
        "kubeflow", frozenset({"container", "importer"}),
        runs_lifecycle=False, caches_file_inputs=False,
    ),
    "vertex": TargetRules(
        "vertex", frozenset({"container", "importer", "resolver"}),
        runs_lifecycle=True, caches_file_inputs=True,
    ),
}
# The parameters that make a task a file-based ExampleGen (TFX's FileBasedExampleGen spec).
FILE_INPUT_PARAMETERS = frozenset({"input_base", "input_config"})

# The executor kinds a PipelineSpec can hold (PipelineDeploymentConfig.ExecutorSpec's oneof).
EXECUTOR_KINDS = ("container", "importer", "resolver", "customJob")


@dataclass(frozen=True)
class Violation:
    task: str
    rule: str  # "executor", "lifecycle", "caching" or "wiring"
    message: str


def check(spec: Mapping[str, Any], target: str) -> list[Violation]:
    """Every way `spec` (a pipelineSpec) breaks `target`'s rules; [] when it can run there."""
    rules = RULES[target]
    components = spec.get("components", {})
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    root = spec.get("root", {})
    violations: list[Violation] = []
    for path, tasks, dag_inputs in _dags(root, components):
        violations += _check_wiring(path, tasks, dag_inputs, components)
        for name, task in tasks.items():
            component = components.get(_component_name(task), {})
            label = component.get("executorLabel")
            if label is not None:
                violations += _check_executor(path + name, label, executors, rules)
            params = component.get("inputDefinitions", {}).get("parameters", {})
            cached = task.get("cachingOptions", {}).get("enableCache", False)
            if FILE_INPUT_PARAMETERS <= set(params) and cached and not rules.caches_file_inputs:
                violations.append(Violation(
                    path + name, "caching",
                    f"it reads files (input_base, input_config) with its cache on, and "
                    f"{rules.target}'s cache key never sees those files: a cached run would "
                    "reuse old examples after new data arrived",
                ))
    return violations


def raise_for(violations: list[Violation], pipeline: str, target: str) -> None:
    """A ConfigError naming the first violation's task (and how many others there are)."""
    if not violations:
        return
    first = violations[0]
    more = len(violations) - 1
    others = f" ({more} more: {', '.join(v.task for v in violations[1:])})" if more else ""
    raise ConfigError(
        f"Pipeline {pipeline!r} compiled for --target {target}, but task {first.task!r} "
        f"cannot run there: {first.message}{others}. Nothing was written."
    )


def _dags(
    root: Mapping[str, Any], components: Mapping[str, Any], path: str = ""
) -> Iterator[tuple[str, dict, dict]]:
    """(task name prefix, tasks, the DAG's own inputs) of the root DAG and every nested one."""
    yield path, root.get("dag", {}).get("tasks", {}), root.get("inputDefinitions", {})
    for name, task in root.get("dag", {}).get("tasks", {}).items():
        component = components.get(_component_name(task), {})
        if "dag" in component:
            yield from _dags(component, components, f"{path}{name}/")


def _component_name(task: Mapping[str, Any]) -> str:
    return task.get("componentRef", {}).get("name", "")


def _check_executor(
    task: str, label: str, executors: Mapping[str, Any], rules: TargetRules
) -> list[Violation]:
    executor = executors.get(label)
    if executor is None:
        return [Violation(task, "wiring", f"its executor {label!r} is not in deploymentSpec")]
    kind = next((k for k in EXECUTOR_KINDS if k in executor), "unknown")
    found = []
    if kind not in rules.executors:
        allowed = " and ".join(sorted(rules.executors))
        found.append(Violation(
            task, "executor",
            f"its executor is a {kind}, and {rules.target} runs only {allowed} executors",
        ))
    if kind == "container" and executor["container"].get("lifecycle") and not rules.runs_lifecycle:
        hooks = ", ".join(sorted(executor["container"]["lifecycle"]))
        found.append(Violation(
            task, "lifecycle",
            f"its container has lifecycle hooks ({hooks}), which {rules.target} never runs "
            "(for a file-based ExampleGen that hook is TFX's driver: span resolution and the "
            "input fingerprint)",
        ))
    return found


def _check_wiring(
    path: str, tasks: Mapping[str, Any], dag_inputs: Mapping[str, Any], components: Mapping
) -> list[Violation]:
    found = []
    for name, task in tasks.items():
        where = path + name
        component_name = _component_name(task)
        if component_name not in components:
            found.append(Violation(where, "wiring", f"its component {component_name!r} does "
                                   "not exist"))
            continue
        component = components[component_name]
        inputs = task.get("inputs", {})
        for kind in ("parameters", "artifacts"):
            declared = component.get("inputDefinitions", {}).get(kind, {})
            given = inputs.get(kind, {})
            for key, source in given.items():
                if key not in declared:
                    found.append(Violation(where, "wiring", f"it passes {kind[:-1]} {key!r}, "
                                           f"which component {component_name!r} does not take"))
                    continue
                problem = _source_problem(kind, source, tasks, dag_inputs, components)
                if problem:
                    found.append(Violation(where, "wiring", f"its input {key!r} {problem}"))
            for key, definition in declared.items():
                if key not in given and not _optional(definition):
                    found.append(Violation(where, "wiring", f"its required input {key!r} is "
                                           "given by nothing (no upstream task, no parameter)"))
        for upstream in task.get("dependentTasks", []):
            if upstream not in tasks:
                found.append(Violation(where, "wiring", f"it depends on task {upstream!r}, "
                                       "which is not in the pipeline"))
    cycle = _cycle(tasks)
    if cycle:
        found.append(Violation(path + cycle[0], "wiring",
                               f"its tasks form a cycle: {' -> '.join(cycle)}"))
    return found


def _optional(definition: Mapping[str, Any]) -> bool:
    return bool(definition.get("isOptional")) or "defaultValue" in definition


def _source_problem(
    kind: str, source: Mapping[str, Any], tasks: Mapping, dag_inputs: Mapping, components: Mapping
) -> str | None:
    """Why the input `source` names nothing that exists (None when it does)."""
    singular = kind[:-1]
    task_output = source.get(f"taskOutput{singular.capitalize()}")
    if task_output is not None:
        producer = task_output.get("producerTask", "")
        key = task_output.get(f"output{singular.capitalize()}Key", "")
        if producer not in tasks:
            return f"is read from task {producer!r}, which is not in the pipeline"
        outputs = (
            components.get(_component_name(tasks[producer]), {})
            .get("outputDefinitions", {})
            .get(kind, {})
        )
        if key not in outputs:
            return f"is read from output {key!r} of task {producer!r}, which has no such output"
        return None
    root_input = source.get(f"componentInput{singular.capitalize()}")
    if root_input is not None:
        if root_input not in dag_inputs.get(kind, {}):
            return f"is read from pipeline {singular} {root_input!r}, which is not declared"
        return None
    if kind == "parameters" and ("runtimeValue" in source or "taskFinalStatus" in source):
        return None
    return "has no source (neither an upstream task's output nor a pipeline input)"


def _cycle(tasks: Mapping[str, Any]) -> list[str]:
    """One cycle among `tasks` through dependencies and data inputs, as task names, or []."""
    edges = {name: set(task.get("dependentTasks", [])) for name, task in tasks.items()}
    for name, task in tasks.items():
        for kind in ("parameters", "artifacts"):
            for source in task.get("inputs", {}).get(kind, {}).values():
                for key in ("taskOutputParameter", "taskOutputArtifact"):
                    if key in source:
                        edges[name].add(source[key].get("producerTask", ""))
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for upstream in sorted(edges.get(node, ())):
            if upstream not in edges:
                continue
            if state.get(upstream) == 1:
                return stack[stack.index(upstream):] + [upstream]
            if upstream not in state:
                found = visit(upstream)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for name in sorted(edges):
        if name not in state:
            found = visit(name)
            if found:
                return found
    return []
