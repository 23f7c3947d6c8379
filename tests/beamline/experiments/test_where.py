"""`--where`: what the language means, and that no input, however hostile, runs as code."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beamline.experiments.where import (
    MAX_DEPTH,
    MAX_LENGTH,
    WhereError,
    columns_named,
    evaluate,
    parse,
)
from tests.hypothesis_budget import examples

ROW = {
    "auc": 0.97, "blessed": True, "labels": ["stable", "canary"], "experiment": "lr-sweep",
    "version": "1764000000", "span": "3", "units": 32, "learning_rate": 0.01, "state": "complete",
    "overrides": {"learning_rate": 0.01}, "fingerprint": None, "precision[class_id=1]": 0.5,
    "train.val_loss": 0.2,
}
COLUMNS = set(ROW)


def holds(text: str, row=None) -> bool:
    return evaluate(parse(text, COLUMNS), ROW if row is None else row)


@pytest.mark.parametrize(("text", "expected"), [
    ("auc > 0.95 and blessed", True),
    ("auc > 0.98 or blessed", True),
    ("auc > 0.98 or not blessed", False),
    ("true and 1 and 'x' and not 0 and not ''", True),  # literals alone
    ("not blessed or auc < 0.5 and units >= 32", False),  # and binds tighter than or
    ("(not blessed or auc < 0.5) and units >= 32", False),
    ("NOT (blessed AND auc < 0.5)", True),  # keywords in any case
    ("auc == 0.97 and auc != 0.5 and auc >= 9.7e-1 and auc <= .97", True),
    ("units > -1 and units < +33", True),
    ("experiment = 'lr-sweep' and experiment = \"lr-sweep\"", True),
    ("experiment = lr", False),  # a bare word on the right is text
    ("experiment ~ sweep and experiment ~ 'lr-'", True),
    ("labels = stable and labels != shadow and labels ~ can", True),
    ("labels = 'stab'", False),
    ("labels > 1", False),  # a list has no order
    ("version > 1700000000 and span = 3 and span < 10", True),  # text that reads as a number
    ("state > 'c' and state < 'd'", True),  # texts alphabetically
    ("fingerprint = none and fingerprint != 0 and not fingerprint", True),
    ("fingerprint < 1 or fingerprint > 1 or fingerprint ~ 1", False),  # missing: no order
    ("auc = none", False),
    ("blessed = true and blessed != 1", True),  # a boolean equals only a boolean
    ("`precision[class_id=1]` = 0.5 and train.val_loss < 0.3", True),
    ("overrides ~ 'learning_rate=0.01'", True),
    ("learning_rate = 0.01", True),
])
def test_what_an_expression_means(text, expected):
    assert holds(text) is expected


def test_a_missing_column_value_is_none():
    assert holds("auc > 0.5", {"blessed": True}) is False
    assert holds("not auc", {}) is True


def test_the_columns_an_expression_reads():
    assert columns_named(parse("auc > 0.9 and (not blessed or labels = stable)", COLUMNS)) == {
        "auc", "blessed", "labels"
    }


@pytest.mark.parametrize(("text", "says"), [
    ("auc >", "ends where a value was expected"),
    ("auc > > 1", "'>' where a value was expected"),
    ("(auc > 1", "`(` is not closed"),
    ("auc > 1)", "unexpected ')'"),
    ("auc 1", "unexpected '1'"),
    ("auc > 1 blessed", "unexpected 'blessed'"),
    ("aucc > 0.9", "Did you mean 'auc'?"),
    ("   ", "--where is empty"),
    ("auc > 0.9 && blessed", "'&' is not part of the language"),
    ("auc > 1x", "'1' is not part of the language"),
])
def test_a_mistake_is_one_paragraph_saying_where_and_what(text, says):
    with pytest.raises(WhereError) as raised:
        parse(text, COLUMNS)
    message = str(raised.value)
    assert says in message and "\n" not in message
    assert raised.value.exit_code == 2


HOSTILE = [
    "__import__('os').system('touch PWNED')",
    "auc > 0.9 or __import__('os').system('touch PWNED')",
    "().__class__.__bases__[0].__subclasses__()",
    "auc.__class__",
    "exec('import os')",
    "eval(\"1\")",
    "lambda: 1",
    "auc > 0.9; import os",
    "f'{auc}'",
    "[x for x in ()]",
    "auc > {}",
    "auc if blessed else 0",
    "open('/etc/passwd').read()",
    "auc\x00 > 1",
    "auc > 0.9 \\\n or blessed",
    "`` > 1",
    "` ` > 1",
    "globals",
    "blessed and",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_input_is_refused_and_never_runs(text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WhereError):
        evaluate(parse(text, COLUMNS), ROW)
    assert not (tmp_path / "PWNED").exists()


def test_nesting_and_length_are_bounded_not_a_recursion_error():
    with pytest.raises(WhereError, match="nested"):
        parse("(" * 500 + "blessed" + ")" * 500, COLUMNS)
    with pytest.raises(WhereError, match="nested"):
        parse("not " * (MAX_DEPTH + 1) + "blessed", COLUMNS)
    assert holds("not " * MAX_DEPTH + "blessed") is True  # MAX_DEPTH is even
    with pytest.raises(WhereError, match="characters long"):
        parse("blessed or " * (MAX_LENGTH // 10) + "blessed", COLUMNS)


@settings(max_examples=examples(300))
@given(st.text(max_size=80))
def test_any_text_parses_to_a_bool_or_is_a_where_error(text):
    try:
        tree = parse(text, COLUMNS)
    except WhereError:
        return
    assert isinstance(evaluate(tree, ROW), bool)


TOKENS = st.sampled_from([
    "auc", "blessed", "labels", "version", "not", "and", "or", "(", ")", "=", "<", ">=", "~",
    "0.9", "-1", "'x'", "stable", "none", "true", "`train.val_loss`",
])


@settings(max_examples=examples(300))
@given(st.lists(TOKENS, max_size=14))
def test_any_sequence_of_the_language_s_words_parses_to_a_bool_or_is_a_where_error(words):
    try:
        tree = parse(" ".join(words), COLUMNS)
    except WhereError:
        return
    assert isinstance(evaluate(tree, ROW), bool)
