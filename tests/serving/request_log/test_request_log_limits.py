"""The request log's bounds: a disk budget per log (oldest files deleted, nothing else), a queue
bounded in bytes, a free-space floor, and private files. Real files, a real writer thread."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from beamline_serving.request_log.config import (
    FILE_SUFFIX,
    LogBudget,
    RequestLogConfig,
    RequestLogConfigError,
    RequestLogSettings,
    settings_from_flags,
)
from beamline_serving.request_log.logger import MIN_RECORD_BYTES, RequestLogRouter, held_bytes
from beamline_serving.request_log.outcomes import OUTCOME_SUFFIX
from beamline_serving.request_log.reader import read_prediction_logs
from tests.serving.request_log.test_request_log import Counts, HeldWriter, _predict_pair
from tests.serving.test_cli_and_config import serve_options

NO_FLOOR = LogBudget(max_bytes=0, min_free_bytes=0)


def _router(prefix, counts=None, free_space=None, budget=NO_FLOOR, **config) -> RequestLogRouter:
    # The budget is the server's (flags), for logging_config entries too: set on the settings.
    settings = RequestLogSettings(
        per_model={"m": RequestLogConfig(str(prefix), **config)}, budget=budget
    )
    if free_space is None:
        return RequestLogRouter(settings, counts)
    return RequestLogRouter(settings, counts, free_space=free_space)


def _log(router: RequestLogRouter, value: float, holds=None) -> None:
    router.log("m", 1, "", "predict", lambda _: _predict_pair(value), holds=holds)


def _logged_values(directory) -> list[float]:
    return sorted(
        r.predict_log.request.inputs["x"].float_val[0] for r in read_prediction_logs(directory)
    )


def _wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


def _log_files(directory) -> list[str]:
    return sorted(
        name for name in os.listdir(directory) if name.endswith((FILE_SUFFIX, OUTCOME_SUFFIX))
    )


def test_a_flood_of_requests_keeps_the_log_under_its_budget_deleting_the_oldest(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    # Beside the log: another model's log, other files, a symlink with the log's very name
    # pattern, an old file of a finished process, and a live process's newest file.
    foreign = {
        "other-20200101T000000Z-9999999-00001.tfrecord": b"x" * 5000,
        "m-notes.txt": b"keep",
        "m-20200101T000000Z-9999999-00001.tfrecord.bak": b"x" * 5000,
    }
    for name, data in foreign.items():
        (logs / name).write_bytes(data)
    outside = tmp_path / "outside.tfrecord"
    outside.write_bytes(b"y" * 5000)
    (logs / "m-20200101T000000Z-9999999-00002.tfrecord").symlink_to(outside)
    finished = logs / "m-20200101T000000Z-9999999-00003.tfrecord"  # pid beyond any real one
    finished.write_bytes(b"z" * 1000)
    sibling = logs / f"m-20200101T000000Z-{os.getppid()}-00001.tfrecord"  # may still be open
    sibling.write_bytes(b"s" * 1000)
    for old in (finished, sibling):
        os.utime(old, (1_600_000_000, 1_600_000_000))

    budget = LogBudget(max_bytes=16_000, min_free_bytes=0)  # files rotate at 2,000 bytes
    router = _router(logs / "m", budget=budget)
    for i in range(400):
        _log(router, float(i))
        router.outcome("m", 1, "predict", "OK", 100.0)
    router.close()

    ours = [logs / n for n in _log_files(logs) if n.startswith("m-") and not n.startswith("m-2020")]
    kept = sum(p.stat().st_size for p in ours) + sibling.stat().st_size
    assert kept <= budget.max_bytes
    assert len(ours) > 3  # rotated, and kept several files, not one
    values = _logged_values(logs)
    assert values and values[-1] == 399.0  # the newest kept, the oldest deleted
    assert values == [float(i) for i in range(int(values[0]), 400)]
    assert values[0] > 0
    assert not finished.exists()
    assert sibling.exists()  # another live writer's current file is never deleted
    for name, data in foreign.items():
        assert (logs / name).read_bytes() == data
    assert (logs / "m-20200101T000000Z-9999999-00002.tfrecord").is_symlink()
    assert outside.read_bytes() == b"y" * 5000


def test_the_file_count_limit_keeps_at_most_that_many_files(tmp_path):
    budget = LogBudget(max_bytes=0, max_files=5, min_free_bytes=0)
    router = _router(tmp_path / "m", budget=budget, max_file_bytes=600)
    for i in range(100):
        _log(router, float(i))
    router.outcome("m", 1, "predict", "OK", 100.0)
    router.close()
    assert len(_log_files(tmp_path)) <= 5
    assert _logged_values(tmp_path)[-1] == 99.0


def test_a_budget_that_cannot_hold_a_new_file_drops_and_counts_instead_of_overrunning(tmp_path):
    # Three files other live processes may be writing leave no room under a count of four
    # beside this logger's own outcome file.
    # A live process of our own (the parent may be pid 1 itself, in a detached run).
    sibling = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                               stdin=subprocess.PIPE)
    try:
        _fill_a_budget_of_four(tmp_path, sibling.pid)
    finally:
        sibling.kill()
        sibling.wait()


def _fill_a_budget_of_four(tmp_path, sibling: int) -> None:
    for pid, suffix in ((sibling, FILE_SUFFIX), (sibling, OUTCOME_SUFFIX), (1, FILE_SUFFIX)):
        (tmp_path / f"m-20200101T000000Z-{pid}-00001{suffix}").write_bytes(b"")
    counts = Counts()
    router = _router(
        tmp_path / "m", counts, budget=LogBudget(max_bytes=0, max_files=4, min_free_bytes=0)
    )
    router.outcome("m", 1, "predict", "OK", 100.0)
    _wait_for(lambda: len(_log_files(tmp_path)) == 4, "the outcome file opened")
    for i in range(3):
        _log(router, float(i))
    router.close()
    assert counts.cells == {("m", "dropped"): 3}
    assert len(_log_files(tmp_path)) == 4


def test_the_queue_is_bounded_in_bytes_and_drops_beyond_them(tmp_path):
    counts = Counts()
    slow_build = HeldWriter()
    arrays = {"x": np.zeros(100_000, np.float32)}  # 400 KB of decoded request per record
    record = MIN_RECORD_BYTES + held_bytes(arrays)
    router = _router(
        tmp_path / "m", counts, budget=NO_FLOOR, queue_records=10_000, queue_bytes=2 * record
    )
    router.log("m", 1, "", "predict", slow_build, holds=arrays)  # the writer holds this one
    assert slow_build.held.wait(120), "the writer never took the first record"
    for _ in range(10):
        router.log("m", 1, "", "predict", slow_build, holds=arrays)
    assert counts.cells.get(("m", "dropped"), 0) == 9  # one more fits, then the bytes are spent
    slow_build.release.set()
    router.close()
    assert counts.cells == {("m", "logged"): 2, ("m", "dropped"): 9}


def test_a_string_tensor_counts_its_strings_not_only_its_pointers():
    strings = np.array([b"a" * 10_000] * 10, dtype=object)
    assert held_bytes({"s": strings}) >= 100_000
    assert held_bytes((np.zeros(1000, np.float64), None)) == 8000


def test_files_and_created_directories_are_private_even_with_umask_zero(tmp_path):
    previous = os.umask(0)
    try:
        router = _router(tmp_path / "a" / "b" / "m", budget=NO_FLOOR)
        _log(router, 1.0)
        router.outcome("m", 1, "predict", "OK", 100.0)
        router.close()
    finally:
        os.umask(previous)
    names = _log_files(tmp_path / "a" / "b")
    assert {os.path.splitext(n)[1] for n in names} == {".tfrecord", ".tsv"}
    for name in names:
        assert stat.S_IMODE((tmp_path / "a" / "b" / name).stat().st_mode) == 0o600
    for directory in (tmp_path / "a", tmp_path / "a" / "b"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_below_the_free_space_floor_nothing_is_written_and_writing_resumes_after(
    tmp_path, caplog
):
    counts = Counts()
    free = {"bytes": 10**12}
    asked: list[str] = []

    def probe(path: str) -> int:
        asked.append(path)
        return free["bytes"]

    budget = LogBudget(min_free_bytes=100 * 1024 * 1024)
    router = _router(tmp_path / "logs" / "m", counts, probe, budget=budget)
    with caplog.at_level(logging.WARNING, logger="beamline.serving.request_log"):
        _log(router, 1.0)
        _wait_for(lambda: counts.cells.get(("m", "logged")) == 1, "the first record written")
        free["bytes"] = 50 * 1024 * 1024
        for i in range(5):
            _log(router, float(10 + i))
        _wait_for(lambda: counts.cells.get(("m", "dropped")) == 5, "the records dropped")
        free["bytes"] = 10**12
        _log(router, 2.0)
        router.close()
    assert counts.cells == {("m", "logged"): 2, ("m", "dropped"): 5}
    assert _logged_values(tmp_path / "logs") == [1.0, 2.0]
    assert set(asked) == {str(tmp_path / "logs")}
    stopped = [r for r in caplog.records if "records are dropped" in r.getMessage()]
    assert len(stopped) == 1 and "--request_log_min_free_bytes" in stopped[0].getMessage()


def test_the_budget_flags_reach_every_log_and_a_budget_too_small_is_refused(tmp_path):
    options = serve_options(
        f"--request_log_dir={tmp_path}",
        "--request_log_max_bytes=2000000",
        "--request_log_max_files=10",
        "--request_log_min_free_bytes=0",
    )
    assert options.request_log_budget == LogBudget(2_000_000, 10, 0)
    assert serve_options(f"--request_log_dir={tmp_path}").request_log_budget == LogBudget()
    assert LogBudget().max_bytes == 1024**3 and LogBudget().min_free_bytes > 0  # on by default

    text = (
        "model_config_list { config { name: 'p' base_path: '/m' logging_config { "
        f"log_collector_config {{ filename_prefix: '{tmp_path}/p' }} }} }} }}"
    )
    settings = settings_from_flags(tmp_path, model_config_text=text, budget=LogBudget(2**21, 8))
    for model in ("p", "any"):  # a logging_config entry and the --request_log_dir default
        assert settings.for_model(model).budget == LogBudget(2**21, 8)

    for flag, value in (("max_bytes", 1000), ("max_files", 2), ("min_free_bytes", -1)):
        with pytest.raises(RequestLogConfigError, match=f"--request_log_{flag} {value}"):
            serve_options(f"--request_log_{flag}={value}")
