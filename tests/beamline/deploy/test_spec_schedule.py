"""`run --spec`'s scheduler (spec_schedule.run_dag) on plain Python work: order, overlap, the
bound, and what a failure stops; and the cache key (spec_cache) KFP's driver would compute."""

from __future__ import annotations

import threading

import pytest

from beamline.deploy import spec_cache
from beamline.deploy.spec_schedule import run_dag

WAIT = 60  # seconds a rendezvous may take on a loaded machine before the test fails


class Log:
    def __init__(self):
        self.lock = threading.Lock()
        self.events: list[tuple[str, str]] = []
        self.running = 0
        self.most = 0

    def add(self, kind, task):
        with self.lock:
            self.events.append((kind, task))


def _work(log, body=None):
    def prepare(task):
        log.add("prepare", task)

        def work():
            with log.lock:
                log.running += 1
                log.most = max(log.most, log.running)
            try:
                return body(task) if body else task.upper()
            finally:
                with log.lock:
                    log.running -= 1
        return work
    return prepare


def test_independent_tasks_overlap_and_a_task_waits_for_what_it_needs():
    log = Log()
    both = threading.Barrier(2, timeout=WAIT)  # broken unless a and b run at the same time

    def body(task):
        if task in ("a", "b"):
            both.wait()
        return task.upper()

    results = {}
    run_dag(["a", "b", "c"], {"c": {"a", "b"}}, _work(log, body),
            lambda t, r: (log.add("finish", t), results.__setitem__(t, r)),
            lambda t, e: log.add("failed", t), max_parallel=2)
    assert results == {"a": "A", "b": "B", "c": "C"}
    events = log.events
    assert events.index(("prepare", "c")) > max(events.index(("finish", "a")),
                                                events.index(("finish", "b")))
    assert log.most == 2


def test_no_more_than_max_parallel_run_at_once():
    log = Log()
    run_dag(list("abcdef"), {}, _work(log), lambda t, r: None, lambda t, e: None, max_parallel=2)
    assert log.most <= 2
    assert sorted(t for kind, t in log.events if kind == "prepare") == list("abcdef")


def test_a_failure_starts_nothing_new_lets_running_tasks_finish_and_is_raised():
    log = Log()
    a_failed = threading.Event()

    def body(task):
        if task == "a":
            raise RuntimeError("a broke")
        assert a_failed.wait(WAIT)  # b is still running when a fails
        return task

    def failed(task, exc):
        log.add("failed", task)
        a_failed.set()

    with pytest.raises(RuntimeError, match="a broke"):
        run_dag(["a", "b", "c", "d"], {"d": {"a"}}, _work(log, body),
                lambda t, r: log.add("finish", t), failed, max_parallel=2)
    assert ("failed", "a") in log.events and ("finish", "b") in log.events
    assert ("prepare", "c") not in log.events and ("prepare", "d") not in log.events


def test_a_failure_to_prepare_is_recorded_and_raised():
    log = Log()

    def prepare(task):
        if task == "b":
            raise ValueError("no input")
        return _work(log)(task)

    with pytest.raises(ValueError, match="no input"):
        run_dag(["a", "b"], {"b": {"a"}}, prepare, lambda t, r: log.add("finish", t),
                lambda t, e: log.add("failed", t), max_parallel=3)
    assert log.events[-2:] == [("finish", "a"), ("failed", "b")]


# A container task's ExecutorInput as spec_inputs builds it (run-specific names and URIs).
def _payload(run_id="r1", what="rows", data_name="r0/make/data", fingerprint=None):
    params = {"what": what, **({"input_fingerprint": fingerprint} if fingerprint else {})}
    return {
        "inputs": {"parameterValues": params,
                   "artifacts": {"data": {"artifacts": [{"name": data_name, "uri": "/x"}]}}},
        "outputs": {
            "artifacts": {"model": {"artifacts": [{
                "name": f"{run_id}/use/model", "uri": f"/root/use/{run_id}/model",
                "type": {"schemaTitle": "tfx.Model"}, "metadata": {}}]}},
            "parameters": {"n": {"outputFile": f"/root/use/{run_id}/n"}},
            "outputFile": f"/root/use/{run_id}/output_metadata.json",
        },
    }


TASK = {"componentRef": {"name": "use"}, "cachingOptions": {"enableCache": True}}
COMPONENT = {"outputDefinitions": {"parameters": {"n": {"parameterType": "NUMBER_INTEGER"}}}}
CONTAINER = {"image": "registry.example/b:1", "command": ["python", "-m", "x"], "args": ["{{$}}"]}


def _fp(payload, task=TASK, container=CONTAINER, code="code-1"):
    return spec_cache.fingerprint(spec_cache.cache_key(task, COMPONENT, container, payload, code))


def test_the_cache_key_is_kfps_inputs_outputs_and_command_without_the_run():
    key = spec_cache.cache_key(TASK, COMPONENT, CONTAINER, _payload(), "code-1")
    assert key["inputArtifactNames"] == {"data": {"artifactNames": ["r0/make/data"]}}
    assert key["outputArtifactsSpec"]["model"] == {
        "name": "model", "type": {"schemaTitle": "tfx.Model"}, "metadata": {}}
    assert key["outputParametersSpec"] == {"n": "NUMBER_INTEGER"}
    assert key["containerSpec"]["cmdArgs"] == ["python", "-m", "x", "{{$}}"]
    # Another run of the same task: other output names and URIs, the same key.
    assert _fp(_payload("r1")) == _fp(_payload("r2"))
    changed = [
        _fp(_payload(what="other")),  # a parameter
        _fp(_payload(data_name="r9/make/data")),  # an input artifact made by another run
        _fp(_payload(), container={**CONTAINER, "image": "registry.example/b:2"}),
        _fp(_payload(), container={**CONTAINER, "command": ["python", "-m", "y"]}),
        _fp(_payload(), code="code-2"),  # this checkout's code changed
    ]
    env = {**CONTAINER, "env": [{"name": "A", "value": "1"}]}
    assert _fp(_payload(), container=env) == _fp(_payload())  # KFP's key has no env
    with_env = spec_cache.cache_key(TASK, COMPONENT, env, _payload(), "code-1", with_env=True)
    assert spec_cache.fingerprint(with_env) != _fp(_payload())  # Vertex's has
    assert _fp(_payload()) not in changed and len(set(changed)) == len(changed)


def test_a_custom_cache_key_replaces_everything_but_the_component():
    custom = {**TASK, "cachingOptions": {"enableCache": True, "cacheKey": "v1"}}
    assert _fp(_payload(), task=custom) == _fp(_payload(what="other"), task=custom, code="c2")
    other = {**custom, "componentRef": {"name": "make"}}
    assert _fp(_payload(), task=custom) != _fp(_payload(), task=other)


def test_the_vertex_driver_hooks_fingerprint_of_the_files_feeds_the_key():
    payload = _payload()
    hook = {"parameterValues": {"input_fingerprint": "split:a,num_files:1,total_bytes:10",
                                "span": 2},
            "artifacts": {"model": {"artifacts": [{"metadata": {"span": 2}}]}}}
    merged = spec_cache.with_hook_output(payload, hook)
    assert merged["inputs"]["parameterValues"]["span"] == 2
    assert merged["outputs"]["artifacts"]["model"]["artifacts"][0]["metadata"] == {"span": 2}
    assert "span" not in payload["inputs"]["parameterValues"]  # the executor's input is kept
    newer = spec_cache.with_hook_output(payload, {"parameterValues": {
        "input_fingerprint": "split:a,num_files:1,total_bytes:12", "span": 2}})
    assert len({_fp(payload), _fp(merged), _fp(newer)}) == 3
    assert spec_cache.reads_files({"inputs": {"parameterValues": {
        "input_base": "/d", "input_config": "{}"}}})
