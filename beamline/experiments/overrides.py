"""`beamline run --set NAME=VALUE`: what a run may change, parsed and checked before it runs.

A `--set` names a field of the pipeline's TabularSpec (train steps, blessing bounds, ...) or a
hyperparameter of its model module (a name in the module's search space). `--set NAME=V1,V2`
gives a name several values; several such names span a grid, one run per combination (a sweep).

Values are read as literals (`3` an int, `0.01` a float, `true` a bool), so the run context
records `{"learning_rate": 0.01}`, not a string; then checked against what the pipeline
declares (`Setting`): an unknown name or a value of the wrong type or range is a ConfigError
(exit 2) listing what is valid. Pure Python: the CLI parses, the pipeline checks.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from beamline.errors import ConfigError, did_you_mean

SPEC_FIELD = "spec field"
HYPERPARAMETER = "hyperparameter"


@dataclass(frozen=True)
class Setting:
    """A name a run may `--set`: its type, its lower bound and what it belongs to."""

    name: str
    kind: type  # int, float or bool
    where: str  # SPEC_FIELD or HYPERPARAMETER
    minimum: float | None = None
    # True: the value must be above `minimum` (a learning rate of 0 learns nothing).
    above: bool = False

    def describe(self) -> str:
        kind = {int: "an integer", float: "a number", bool: "true or false"}[self.kind]
        if self.minimum is None:
            return kind
        relation = "above" if self.above else "at least"
        bound = int(self.minimum) if float(self.minimum).is_integer() else self.minimum
        return f"{kind} {relation} {bound}"

    def coerce(self, value: Any, context: str) -> Any:
        """`value` as this setting's type; a ConfigError naming the expected type and range."""
        ok = (
            isinstance(value, bool) if self.kind is bool
            else isinstance(value, int) and not isinstance(value, bool) if self.kind is int
            else isinstance(value, int | float) and not isinstance(value, bool)
        )
        if ok and self.minimum is not None:
            ok = value > self.minimum if self.above else value >= self.minimum
        if not ok:
            raise ConfigError(
                f"{context}: {self.name}={_show(value)} is not valid; {self.name} is a "
                f"{self.where} and takes {self.describe()}."
            )
        return float(value) if self.kind is float else value


def literal(text: str) -> Any:
    """A `--set` value as typed: int, float, bool (true/false), else the string itself."""
    stripped = text.strip()
    if stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    for kind in (int, float):
        try:
            return kind(stripped)
        except ValueError:
            pass
    return stripped


def parse_sets(texts: Iterable[str]) -> list[tuple[str, list[Any]]]:
    """`--set` options as (name, values) axes, in the order given. `NAME=V1,V2` gives a name
    several values (a sweep); each name may be set once."""
    axes: list[tuple[str, list[Any]]] = []
    for text in texts:
        name, sep, values = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(
                f"--set {text!r}: write NAME=VALUE (or NAME=V1,V2,... for a sweep), e.g. "
                "--set learning_rate=0.01 or --set train_steps=100,200."
            )
        parts = [v.strip() for v in values.split(",")]
        if not any(parts):
            raise ConfigError(
                f"--set {text!r} gives {name} no value: write {name}=VALUE, or "
                f"{name}=V1,V2 for one run per value."
            )
        if not all(parts):
            raise ConfigError(f"--set {text!r} has an empty value between commas; drop it.")
        if any(name == seen for seen, _ in axes):
            raise ConfigError(
                f"--set {name} is given twice; give it once, with every value separated by "
                f"commas ({name}=V1,V2)."
            )
        axes.append((name, [literal(p) for p in parts]))
    return axes


def variants(axes: Sequence[tuple[str, Sequence[Any]]]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, the last axis varying fastest ([{}] for none)."""
    names = [name for name, _ in axes]
    return [dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(values for _, values in axes))]


def check(
    overrides: Mapping[str, Any], declared: Mapping[str, Setting], pipeline: str
) -> dict[str, Any]:
    """`overrides` with each value coerced to its setting's type; a ConfigError for a name the
    pipeline does not declare (with the closest name and every valid one) or a bad value."""
    context = f"--set for pipeline {pipeline!r}"
    checked = {}
    for name, value in overrides.items():
        setting = declared.get(name)
        if setting is None:
            raise ConfigError(
                f"{context}: {name!r} is not a setting of this pipeline. "
                f"{did_you_mean(name, declared)}It declares: {describe(declared.values())}."
            )
        checked[name] = setting.coerce(value, context)
    return checked


def describe(settings: Iterable[Setting]) -> str:
    """`name (type)` for each setting, spec fields first, as one line."""
    ordered = sorted(settings, key=lambda s: (s.where != SPEC_FIELD, s.name))
    by_where: dict[str, list[str]] = {}
    for s in ordered:
        by_where.setdefault(s.where, []).append(f"{s.name} ({s.describe()})")
    return "; ".join(f"{where}s {', '.join(names)}" for where, names in by_where.items())


def hyperparameter_settings(search_space: Mapping[str, Sequence], defaults: Mapping[str, Any]):
    """A model module's hyperparameters as Settings: integers when every choice (and the
    default) is one, else numbers; positive, as the sizes and rates of a network are."""
    settings = {}
    for name in {**search_space, **defaults}:
        values = [*search_space.get(name, ()), *([defaults[name]] if name in defaults else [])]
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(numbers) != len(values) or not values:
            continue  # not a number (e.g. an activation's name): not settable from the CLI
        kind = int if all(isinstance(v, int) for v in numbers) else float
        positive = all(v > 0 for v in numbers)
        settings[name] = Setting(
            name, kind, HYPERPARAMETER,
            minimum=(1 if kind is int else 0) if positive else None,
            above=positive and kind is float,
        )
    return settings


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
