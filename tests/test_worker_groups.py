"""The split of the suite over xdist workers: modules sharing a session fixture stay together,
a module is never split, heavy groups are handed out first."""

from __future__ import annotations

from tests.worker_groups import Collected, groups, heaviest_first, read_groups, write_groups


def _test(module: str, *fixtures: str, heavy: bool = False) -> Collected:
    return Collected(module, frozenset(fixtures), heavy)


def test_modules_sharing_a_session_fixture_transitively_form_one_group():
    tests = [
        _test("tests/e2e/test_a.py", "penguin_run"),
        _test("tests/e2e/test_b.py", "penguin_run", "servers"),
        _test("tests/serving/test_c.py", "servers"),
        _test("tests/serving/test_d.py", "tmp_path_factory"),
        _test("tests/other/test_e.py"),
    ]
    group_of = groups(tests)
    assert group_of["tests/e2e/test_a.py"] == group_of["tests/e2e/test_b.py"] == group_of[
        "tests/serving/test_c.py"] == "tests/e2e/test_a.py"
    # tmp_path_factory is every worker's own: it glues nothing.
    assert group_of["tests/serving/test_d.py"] == "tests/serving/test_d.py"
    assert group_of["tests/other/test_e.py"] == "tests/other/test_e.py"


def test_the_flink_directory_is_one_group():
    tests = [_test("tests/beamline/flink/test_cluster.py", "flink_cluster"),
             _test("tests/beamline/flink/test_orphans.py")]
    assert len(set(groups(tests).values())) == 1


def test_groups_with_more_heavy_modules_come_first_each_group_whole():
    tests = [
        _test("tests/x/test_fast.py"),
        _test("tests/e2e/test_one.py", heavy=True),
        _test("tests/e2e/test_two.py", "run", heavy=True),
        _test("tests/x/test_fast.py"),
        _test("tests/e2e/test_three.py", "run", heavy=True),
        _test("tests/e2e/test_two.py", "run", heavy=True),
    ]
    order = heaviest_first(tests, groups(tests))
    assert [tests[i].module for i in order] == [
        "tests/e2e/test_two.py", "tests/e2e/test_three.py", "tests/e2e/test_two.py",
        "tests/e2e/test_one.py", "tests/x/test_fast.py", "tests/x/test_fast.py",
    ]
    assert sorted(order) == list(range(len(tests)))



def test_the_map_a_worker_writes_reads_back_and_a_missing_one_is_empty(tmp_path):
    path = tmp_path / "groups.json"
    assert read_groups(path) == {}
    write_groups(path, {"tests/a.py": "tests/a.py", "tests/b.py": "tests/a.py"})
    assert read_groups(path) == {"tests/a.py": "tests/a.py", "tests/b.py": "tests/a.py"}
    assert [p.name for p in tmp_path.iterdir()] == ["groups.json"]
