"""`--where`: a small filter language over a table's columns, parsed here and never evaluated as
Python.

    auc > 0.95 and blessed
    not blessed or experiment = 'lr-sweep'
    labels = stable and (learning_rate <= 0.01 or units >= 32)

Grammar (keywords in any case):

    expr       := term ('or' term)*
    term       := factor ('and' factor)*
    factor     := 'not' factor | '(' expr ')' | comparison
    comparison := value (OP value)?          OP: = == != < <= > >= ~
    value      := number | 'text' | "text" | true | false | none | null | NAME | `any name`

A NAME is a column (letters, digits, `_`, `.`, `/`; backquotes for any other name). On the right
of an operator, a bare word that is no column is text (`experiment = baseline`). A value alone is
a test: false for none, false, 0, empty text or list. Comparisons:

- two numbers (or a number and text that reads as one, like a version or a span) by value;
  two texts alphabetically; `~` is "contains" (text in text, or an item of a list);
- a list column (labels) `= x` holds x, `!= x` does not;
- a missing value (none) equals only `none`; it is neither smaller nor larger than anything.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from beamline.errors import ConfigError, did_you_mean

MAX_LENGTH = 2000  # characters; a filter is typed, not generated
MAX_DEPTH = 40  # nested `not` and parentheses
OPERATORS = ("==", "!=", "<=", ">=", "=", "<", ">", "~")
KEYWORDS = {"and", "or", "not", "true", "false", "none", "null"}
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])
  | (?P<string>'[^']*'|"[^"]*")
  | (?P<quoted>`[^`]+`)
  | (?P<name>[A-Za-z_][\w./]*)
  | (?P<op>==|!=|<=|>=|=|<|>|~)
  | (?P<paren>[()])
    """,
    re.VERBOSE,
)


class WhereError(ConfigError):
    """A --where expression that does not parse, or names no column (exit code 2)."""


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, name, op, paren, keyword, end
    text: str
    at: int


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Column:
    name: str


@dataclass(frozen=True)
class Compare:
    op: str
    left: Literal | Column
    right: Literal | Column


@dataclass(frozen=True)
class Not:
    operand: Any


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    operands: tuple


def _fail(text: str, at: int, what: str) -> WhereError:
    def clip(part: str) -> str:
        return part if len(part) <= 60 else part[:57] + "..."

    rest = f" (at {clip(text[at:])!r})" if text[at:] else ""
    return WhereError(
        f"--where {clip(text)!r} does not parse at character {at + 1}{rest}: {what}. Write "
        "comparisons of columns with numbers or quoted text, joined by and, or, not and "
        "parentheses, e.g. --where \"auc > 0.95 and blessed\"."
    )


def tokenize(text: str) -> list[Token]:
    tokens, at = [], 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            raise _fail(text, at, f"{text[at]!r} is not part of the language")
        kind = match.lastgroup
        value = match.group()
        if kind == "name" and value.lower() in KEYWORDS:
            kind, value = "keyword", value.lower()
        if kind != "space":
            tokens.append(Token(kind, value, at))
        at = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str, columns: set[str]) -> None:
        self.text, self.columns = text, columns
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token.kind == "keyword" and token.text == word:
            self.pos += 1
            return True
        return False

    def deeper(self, at: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _fail(self.text, at, f"more than {MAX_DEPTH} nested `not`s and parentheses")

    def parse(self):
        node = self.expr()
        token = self.peek()
        if token.kind != "end":
            raise _fail(self.text, token.at, f"unexpected {token.text!r} (a missing and/or?)")
        return node

    def expr(self):
        operands = [self.term()]
        while self.keyword("or"):
            operands.append(self.term())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def term(self):
        operands = [self.factor()]
        while self.keyword("and"):
            operands.append(self.factor())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def factor(self):
        token = self.peek()
        if self.keyword("not"):
            self.deeper(token.at)
            node = Not(self.factor())
            self.depth -= 1
            return node
        if token.kind == "paren" and token.text == "(":
            self.deeper(token.at)
            self.pos += 1
            node = self.expr()
            closing = self.take()
            if closing.kind != "paren" or closing.text != ")":
                raise _fail(self.text, closing.at, "a `(` is not closed")
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self):
        left = self.value(right_side=False)
        token = self.peek()
        if token.kind != "op":
            return left
        self.pos += 1
        op = "=" if token.text == "==" else token.text
        return Compare(op, left, self.value(right_side=True))

    def value(self, right_side: bool) -> Literal | Column:
        token = self.take()
        if token.kind == "number":
            return Literal(float(token.text))
        if token.kind == "string":
            return Literal(token.text[1:-1])
        if token.kind == "keyword" and token.text in ("true", "false"):
            return Literal(token.text == "true")
        if token.kind == "keyword" and token.text in ("none", "null"):
            return Literal(None)
        if token.kind in ("name", "quoted"):
            name = token.text.strip("`") if token.kind == "quoted" else token.text
            if name in self.columns:
                return Column(name)
            if right_side and token.kind == "name":
                return Literal(name)  # a bare word: text
            hint = did_you_mean(name, self.columns)
            raise WhereError(
                f"--where names {name!r}, which is no column of this table. {hint}Columns: "
                f"{', '.join(sorted(self.columns))}. Quote text on the right of a comparison "
                "('like this')."
            )
        if token.kind == "end":
            raise _fail(self.text, token.at, "it ends where a value was expected")
        raise _fail(self.text, token.at, f"{token.text!r} where a value was expected")


def parse(text: str, columns: Iterable[str]):
    """The expression tree of `text`; WhereError (exit 2) if it does not parse or names a column
    `columns` lacks."""
    if len(text) > MAX_LENGTH:
        raise WhereError(f"--where is {len(text)} characters long; at most {MAX_LENGTH} are read.")
    if not text.strip():
        raise WhereError("--where is empty: give a condition such as \"blessed\", or leave it out.")
    return _Parser(text, set(columns)).parse()


# ---------------------------------------------------------------- evaluation


def truthy(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return bool(value)


def as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def as_text(value: Any) -> str:
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    x, y = as_number(a), as_number(b)
    if x is not None and y is not None:
        return x == y
    return as_text(a) == as_text(b)


def compare(op: str, a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple | set):
        if op == "=":
            return any(_equal(item, b) for item in a)
        if op == "!=":
            return not any(_equal(item, b) for item in a)
        if op == "~":
            return any(as_text(b) in as_text(item) for item in a)
        return False
    if op == "=":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    if a is None or b is None:
        return False
    if op == "~":
        return as_text(b) in as_text(a)
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    x, y = as_number(a), as_number(b)
    if x is not None and y is not None:
        return _ORDER[op](x, y)
    if isinstance(a, str) and isinstance(b, str):
        return _ORDER[op](a, b)
    return False


def _value(node: Literal | Column, row: Mapping[str, Any]) -> Any:
    return node.value if isinstance(node, Literal) else row.get(node.name)


def evaluate(node, row: Mapping[str, Any]) -> bool:
    """Whether `row` (column -> value) passes the expression."""
    if isinstance(node, BoolOp):
        if node.op == "and":
            return all(evaluate(n, row) for n in node.operands)
        return any(evaluate(n, row) for n in node.operands)
    if isinstance(node, Not):
        return not evaluate(node.operand, row)
    if isinstance(node, Compare):
        return compare(node.op, _value(node.left, row), _value(node.right, row))
    return truthy(_value(node, row))


def columns_named(node) -> set[str]:
    """Every column the expression reads."""
    if isinstance(node, BoolOp):
        return set().union(*(columns_named(n) for n in node.operands))
    if isinstance(node, Not):
        return columns_named(node.operand)
    if isinstance(node, Compare):
        return columns_named(node.left) | columns_named(node.right)
    return {node.name} if isinstance(node, Column) else set()
