import re

import pytest

from beamline.errors import DataError
from beamline.runner.preflight import resolve_data


def test_directory_of_csvs(tmp_path):
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "b.csv").write_text("x,y\n3,4\n")
    data = resolve_data(tmp_path)
    assert data.pattern == "*.csv" and len(data.files) == 2 and data.total_bytes > 0


def test_single_file_becomes_its_directory_and_name(tmp_path):
    (tmp_path / "only.csv").write_text("x\n1\n")
    data = resolve_data(tmp_path / "only.csv")
    assert data.root == tmp_path.resolve() and data.pattern == "only.csv"


@pytest.mark.parametrize(
    "setup, fragment",
    [
        (lambda d: None, "holds no *.csv files"),
        (lambda d: (d / "e.csv").write_text(""), "empty or has no header"),
        (lambda d: (d / "h.csv").write_text("x,y\n"), "no data rows"),
        (
            lambda d: ((d / "a.csv").write_text("x\n1\n"), (d / "b.csv").write_text("y\n1\n")),
            "disagree on columns",
        ),
    ],
)
def test_bad_data_directories_name_the_problem(tmp_path, setup, fragment):
    setup(tmp_path)
    with pytest.raises(DataError, match=re.escape(fragment)) as info:
        resolve_data(tmp_path)
    assert str(tmp_path.resolve()) in str(info.value)


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        resolve_data(tmp_path / "nope")
