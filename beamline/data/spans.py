"""TFX spans under a data directory: find them, pick the one(s) a run reads, check them early.

A pipeline's span pattern follows TFX's ExampleGen input patterns (relative to `--data`):
`{SPAN}` (or `{SPAN:width}`, zero-padded) or `{YYYY}{MM}{DD}` (span = days since 1970-01-01,
as TFX numbers date spans). Pure filesystem work, no TFX: every bad selection (unknown span,
empty span directory, a pattern that matches nothing) is a one-paragraph error before any Beam
work, and nothing is written.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path

from beamline.data.files import (
    FORMAT_PATTERNS,
    DataInput,
    check_files,
    format_of,
    resolve_data,
)
from beamline.errors import ConfigError, DataError

DEFAULT_SPAN_PATTERN = "span-{SPAN}/*.csv"
_EPOCH = datetime.date(1970, 1, 1)
_TOKEN = re.compile(r"\{(SPAN(?::(\d+))?|YYYY|MM|DD|VERSION(?::\d+)?)\}")


@dataclass(frozen=True)
class SpanRange:
    first: int
    last: int

    def __str__(self) -> str:
        return f"{self.first}:{self.last}"


def span_pattern_of(pipeline_module) -> str:
    """The pipeline's TFX span pattern: its module-level SPAN_PATTERN, or the default."""
    return getattr(pipeline_module, "SPAN_PATTERN", DEFAULT_SPAN_PATTERN)


def parse_span_range(text: str) -> SpanRange:
    """`A:B` (inclusive, A <= B) as a SpanRange; ConfigError otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", text or "")
    if not match or int(match.group(1)) > int(match.group(2)):
        raise ConfigError(
            f"--span-range {text!r} is not a span range. Give two span numbers FIRST:LAST with "
            "FIRST <= LAST, e.g. --span-range 1:3 (both ends included)."
        )
    return SpanRange(int(match.group(1)), int(match.group(2)))


def has_span_spec(pattern: str) -> bool:
    return "{SPAN" in pattern or "{YYYY}" in pattern


def _regex(pattern: str) -> re.Pattern:
    """The pattern as a regex over paths relative to the data directory; groups name tokens."""
    out, pos = [], 0
    for match in _TOKEN.finditer(pattern):
        out.append(_glob_regex(pattern[pos : match.start()]))
        token, width = match.group(1), match.group(2)
        if token.startswith("VERSION"):
            raise ConfigError(
                f"Span pattern {pattern!r} uses {{VERSION}}, which `beamline run` does not "
                "select; drop it from the pipeline's SPAN_PATTERN."
            )
        name = "SPAN" if token.startswith("SPAN") else token
        digits = {"SPAN": width or "1,", "YYYY": "4", "MM": "2", "DD": "2"}[name]
        out.append(f"(?P<{name}>\\d{{{digits}}})")
        pos = match.end()
    out.append(_glob_regex(pattern[pos:]))
    return re.compile("".join(out))


def _glob_regex(part: str) -> str:
    return "".join(
        "[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in part
    )


def _glob(pattern: str) -> str:
    return _TOKEN.sub("*", pattern)


def span_number(match: re.Match) -> int:
    groups = match.groupdict()
    if groups.get("SPAN") is not None:
        return int(groups["SPAN"])
    date = datetime.date(int(groups["YYYY"]), int(groups["MM"]), int(groups["DD"]))
    return (date - _EPOCH).days


def span_label(span: int, pattern: str) -> str:
    """How a user names the span: its number, or its date for {YYYY}{MM}{DD} patterns."""
    if "{SPAN" in pattern:
        return str(span)
    return f"{span} ({_EPOCH + datetime.timedelta(days=span)})"


def find_spans(root: Path, pattern: str) -> dict[int, list[Path]]:
    """Span number -> its files (sorted). Span directories without matching files map to []."""
    regex = _regex(pattern)
    spans: dict[int, list[Path]] = {}
    for path in root.glob(_glob(pattern)):
        match = regex.fullmatch(path.relative_to(root).as_posix())
        if match and path.is_file():
            spans.setdefault(span_number(match), []).append(path)
    # A span directory that exists but holds no matching file (an empty or unfinished drop).
    directory = pattern.rsplit("/", 1)[0] if "/" in pattern else ""
    if has_span_spec(directory):
        dir_regex = _regex(directory)
        for path in root.glob(_glob(directory)):
            match = dir_regex.fullmatch(path.relative_to(root).as_posix())
            if match and path.is_dir():
                spans.setdefault(span_number(match), [])
    return {span: sorted(files) for span, files in sorted(spans.items())}


@dataclass(frozen=True)
class SpanSelection:
    """The spans a run reads: `span` through TFX's RangeConfig, `extra` read alongside it."""

    span: int
    extra: tuple[int, ...]
    files: tuple[Path, ...]
    # (span, the pattern with that span filled in) of each extra span
    extra_patterns: tuple[tuple[int, str], ...]

    @property
    def label(self) -> str:
        return f"{self.extra[0]}-{self.span}" if self.extra else str(self.span)


def fill_span(pattern: str, span: int) -> str:
    """The pattern for one span (TFX's own substitution: zero-padded SPAN, or the date)."""
    date = _EPOCH + datetime.timedelta(days=span)

    def value(match: re.Match) -> str:
        token, width = match.group(1), match.group(2)
        if token.startswith("SPAN"):
            return str(span).zfill(int(width or 0))
        return {"YYYY": f"{date.year:04d}", "MM": f"{date.month:02d}", "DD": f"{date.day:02d}"}[
            token
        ]

    return _TOKEN.sub(value, pattern)


def select_spans(
    root: Path,
    pattern: str,
    spans: dict[int, list[Path]],
    span: int | None = None,
    span_range: SpanRange | None = None,
) -> SpanSelection:
    """The span(s) to read: `span`, every span in `span_range`, or the latest (TFX's default)."""
    if span is not None and span_range is not None:
        raise ConfigError("Give --span or --span-range, not both.")
    known = ", ".join(span_label(s, pattern) for s in spans) or "none"
    if span_range is not None:
        chosen = [s for s in spans if span_range.first <= s <= span_range.last]
        if not chosen:
            raise DataError(
                f"No span of {root} in --span-range {span_range} (pattern {pattern!r}; spans "
                f"found: {known}). Pick a range that holds at least one span."
            )
    elif span is not None:
        if span not in spans:
            raise DataError(
                f"Span {span} is not in {root} (pattern {pattern!r}; spans found: {known}). "
                "Pass one of those to --span, or add the span's directory."
            )
        chosen = [span]
    else:
        chosen = [max(spans)]
    for s in chosen:
        if not spans[s]:
            raise DataError(
                f"Span {span_label(s, pattern)} of {root} holds no file matching {pattern!r} "
                f"(its directory {root / Path(fill_span(pattern, s)).parent} is empty). Finish "
                "copying the span's CSV files, remove the empty directory, or pick another span "
                "with --span."
            )
    files = tuple(f for s in chosen for f in spans[s])
    return SpanSelection(
        span=chosen[-1],
        extra=tuple(chosen[:-1]),
        files=files,
        extra_patterns=tuple((s, fill_span(pattern, s)) for s in chosen[:-1]),
    )


def resolve_input(
    path: Path,
    pattern: str = DEFAULT_SPAN_PATTERN,
    span: int | None = None,
    span_range: SpanRange | None = None,
) -> DataInput:
    """What a run reads from `--data`: its selected span(s), or (no spans) the plain CSVs."""
    path = path.expanduser().resolve()
    pattern, spans = _spans_in_any_format(path, pattern) if path.is_dir() else (pattern, {})
    if spans:
        selection = select_spans(path, pattern, spans, span, span_range)
        fmt = format_of(Path(pattern)) or "csv"
        if selection.extra and fmt != "csv":
            raise ConfigError(
                f"--span-range reads several spans in one run only from CSV files; {path} holds "
                f"{fmt} spans. Run one span at a time with --span N."
            )
        check_files(selection.files, fmt)
        return DataInput(
            path,
            pattern,
            selection.files,
            span=selection.span,
            extra_spans=selection.extra_patterns,
            span_label=selection.label,
            format=fmt,
        )
    if span is not None or span_range is not None:
        raise DataError(
            f"--span/--span-range select TFX spans, but the span pattern {pattern!r} matches "
            f"nothing under {path}. Put each span's CSV files in its own directory, e.g. "
            f"{path / fill_span(pattern, 1)}, or drop the flag to read {path} as plain CSVs."
        )
    return resolve_data(path)


def _spans_in_any_format(path: Path, pattern: str) -> tuple[str, dict[int, list[Path]]]:
    """Spans of `pattern`; a pattern for CSV files (`.../*.csv`) also finds spans of TFRecord or
    Parquet files (the same pattern with their file names)."""
    spans = find_spans(path, pattern)
    if any(spans.values()) or not pattern.endswith("*.csv"):
        return pattern, spans
    for fmt, patterns in FORMAT_PATTERNS.items():
        for name in patterns if fmt != "csv" else ():
            candidate = pattern[: -len("*.csv")] + name
            found = find_spans(path, candidate)
            if any(found.values()):
                return candidate, found
    return pattern, spans
