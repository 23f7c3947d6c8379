"""The serving-root files: what `beamline promote` writes and `beamline serve --root` reads.

Beside one directory per model (`<model>/<version>/`), a run root's `serving/` holds:

- `models.config` (LABELS_FILE_NAME): a text TF Serving ModelServerConfig with one `config` per
  model that has a label: a `specific` version policy listing every labelled version, and
  `version_labels` naming them. TF Serving reads it as `--model_config_file`.
- `routing.json` (ROUTING_FILE_NAME): what such a config has no field for,
  `{"models": {"<model>": {"canary_percent": N}}}`; other keys are left for other tools.

Two labels mean something to the server: `stable` answers unversioned requests and `canary`
answers `canary_percent` of them (routing.py applies them).

This module is the contract between the writer (the framework's beamline.metadata.labels_file)
and the reader (root_files.py, which re-reads both files while serving): the names, the text
each file is written as, and the checks the reader makes, which the writer runs on what it is
about to write. It imports nothing of the server but its errors, so the framework can use it
without the server's other modules; the ModelServerConfig itself is read by config.py, as any
`--model_config_file` is.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

from beamline_serving.errors import ConfigError

LABELS_FILE_NAME = "models.config"
ROUTING_FILE_NAME = "routing.json"
STABLE = "stable"
CANARY = "canary"
_CANARY_PERCENT = "canary_percent"


# ---------------------------------------------------------------------------- models.config


def _quote(text: str) -> str:
    """A text-proto string literal protobuf's parser (TF Serving's and `beamline serve`'s)
    reads back as exactly `text`. Its UTF-8 bytes are escaped the C way, non-ASCII ones in
    octal: a JSON `\\u00e9` would be read as the single byte 0xE9, not UTF-8, and fail."""
    from google.protobuf import text_encoding

    return '"' + text_encoding.CEscape(text.encode("utf-8"), as_utf8=False) + '"'


def models_config_text(
    serving_root: Path,
    labels: Mapping[str, Mapping[str, int]],
    extra_versions: Mapping[str, set[int]] | None = None,
) -> str:
    """The labels file for `labels` (model -> label -> version), each model's base path being
    `<serving_root>/<model>`; `extra_versions` are listed too, without a label (loaded before a
    label moves onto them)."""
    lines = [
        "# Written by Beamline from the label history in ML Metadata (beamline labels).",
        "# Do not edit: the next promote, rollback or push rewrites it.",
        "model_config_list {",
    ]
    for model in sorted(labels):
        held = labels[model]
        versions = set(held.values()) | set((extra_versions or {}).get(model, ()))
        if versions:
            lines += _model_config_lines(serving_root / model, model, held, versions)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _model_config_lines(
    base_path: Path, model: str, held: Mapping[str, int], versions: set[int]
) -> list[str]:
    lines = [
        "  config {",
        f"    name: {_quote(model)}",
        f"    base_path: {_quote(str(base_path))}",
        '    model_platform: "tensorflow"',
        "    model_version_policy {",
        "      specific {",
        *(f"        versions: {v}" for v in sorted(versions)),
        "      }",
        "    }",
    ]
    for label in sorted(held):
        lines += ["    version_labels {", f"      key: {_quote(label)}",
                  f"      value: {held[label]}", "    }"]
    lines.append("  }")
    return lines


# ----------------------------------------------------------------------------- routing.json


def check_percent(value: object, where: str) -> float:
    """A canary percentage in [0, 100], or a ConfigError naming where it came from."""
    # An int is finite however large (and too large for math.isfinite): JSON holds such ints.
    finite = isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    if isinstance(value, bool) or not finite:
        raise ConfigError(f"{where} must be a number from 0 to 100, got {value!r}.")
    if not 0 <= value <= 100:
        raise ConfigError(f"{where} is {value}, outside 0..100; give a percentage of requests.")
    return float(value)


def parse_routing_json(text: str, source: str) -> dict[str, float]:
    """Per-model canary percentages from routing.json: {"models": {name: {"canary_percent": N}}}.

    Keys other than `canary_percent` are left for other tools; a wrong value is a ConfigError
    naming the file and field.
    """
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        problem = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ConfigError(
            f"Cannot parse {source} as JSON ({problem}). It must look like "
            '{"models": {"penguin": {"canary_percent": 10}}}.'
        ) from None
    if not isinstance(doc, dict):
        raise ConfigError(f'{source}: the top level must be a JSON object with a "models" key.')
    models = doc.get("models", {})
    if not isinstance(models, dict):
        raise ConfigError(f'{source}: "models" must be an object of model name -> settings.')
    percents: dict[str, float] = {}
    for name, entry in models.items():
        if not isinstance(entry, dict):
            raise ConfigError(
                f'{source}: models.{name} must be an object such as {{"canary_percent": 10}}.'
            )
        if _CANARY_PERCENT in entry:
            percents[name] = check_percent(
                entry[_CANARY_PERCENT], f"{source}: models.{name}.{_CANARY_PERCENT}"
            )
    return percents


def routing_text_with(old_text: str | None, model: str, percent: float, source: str) -> str:
    """routing.json with `model`'s canary share set to `percent`, every other entry and key
    kept from `old_text` (None: no file yet; text that is not a routing document is replaced,
    as the server cannot use it either). ConfigError, naming the field, when the result is a
    file the server would refuse, such as another model's share out of range."""
    doc = _routing_doc(old_text)
    entry = doc["models"].get(model)
    if not isinstance(entry, dict):
        entry = doc["models"][model] = {}
    entry[_CANARY_PERCENT] = check_percent(percent, f"{source}: models.{model}.{_CANARY_PERCENT}")
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    parse_routing_json(text, source)
    return text


def _routing_doc(text: str | None) -> dict:
    try:
        doc = json.loads(text) if text is not None else None
    except (ValueError, RecursionError):
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), dict):
        return {"models": {}}
    return doc
