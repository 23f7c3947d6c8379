"""Secrets kept out of logs and child processes: which names look secret, which values to hide.

- `SECRET_NAME` matches environment variable and Beam flag names that look secret (PASSWORD,
  TOKEN, ...); `SOURCES_ENV` names the secrets a compiled pipeline declared (no values).
- `install_log_redaction(values)` masks `values` in every log record this process creates from
  then on: Beam logs the flags it does not know with their values ("Discarding unparseable
  args: [...]"), and a secret substituted into such a flag would reach the task's log.
- `redact_beam_args(args, environ)` is what a log line may show of Beam args.

This module sits below every layer that uses it (deploy, runner, flink) and imports nothing of
Beamline's.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence

SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL", re.IGNORECASE
)
SOURCES_ENV = "BEAMLINE_SECRET_SOURCES"
# Shorter values would mask (and, in a compile's leak scan, match) ordinary text by chance.
MIN_DECLARED_LEN = 4
MIN_UNDECLARED_LEN = 8  # a secret-looking variable nobody declared: its value may be "true"
MASK = "***"


def declared_secret_names(environ: Mapping[str, str]) -> set[str]:
    """The secrets `SOURCES_ENV` declares (none when it is unset or unreadable)."""
    try:
        sources = json.loads(environ.get(SOURCES_ENV) or "{}")
    except ValueError:
        return set()
    return set(sources) if isinstance(sources, dict) else set()


def looks_secret(name: str, value: str, declared: Iterable[str] = ()) -> bool:
    """The variable `name` holds a secret worth hiding: declared, or its name looks secret."""
    if name in declared:
        return len(value) >= MIN_DECLARED_LEN
    return bool(SECRET_NAME.search(name)) and len(value) >= MIN_UNDECLARED_LEN


def secret_values(environ: Mapping[str, str]) -> set[str]:
    """The values of the declared secrets and of the secret-looking variables in `environ`."""
    declared = declared_secret_names(environ)
    return {value for name, value in environ.items() if looks_secret(name, value, declared)}


def _forms(value: str) -> set[str]:
    """`value` as it appears in text, in JSON and in a Python repr (Beam logs a list's repr)."""
    return {value, json.dumps(value)[1:-1], repr(value)[1:-1]}


def redact(text: str, values: Iterable[str]) -> str:
    """`text` with every value (and its JSON / repr spelling) replaced by MASK."""
    forms = {form for value in values if value for form in _forms(value)}
    for form in sorted(forms, key=len, reverse=True):  # a value inside a longer one: longest first
        text = text.replace(form, MASK)
    return text


def _secret_flag(arg: str) -> bool:
    return arg.startswith("-") and bool(SECRET_NAME.search(arg.partition("=")[0]))


def beam_arg_secrets(args: Sequence[str], environ: Mapping[str, str]) -> set[str]:
    """The secret values in Beam args: each secret-looking flag's value (`--db_password=V` or
    `--db_password V`) and the secrets of `environ`."""
    values = secret_values(environ)
    for i, arg in enumerate(args):
        if not _secret_flag(arg):
            continue
        name, sep, value = arg.partition("=")
        if not sep and i + 1 < len(args) and not args[i + 1].startswith("-"):
            value = args[i + 1]
        if len(value) >= MIN_DECLARED_LEN:
            values.add(value)
    return values


def redact_beam_args(args: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """`args` as a log may show them: a secret-looking flag's value is masked whatever its
    length, and every secret value of `environ` wherever it appears."""
    values = secret_values(environ)
    out: list[str] = []
    for i, arg in enumerate(args):
        if i and _secret_flag(args[i - 1]) and "=" not in args[i - 1] and not arg.startswith("-"):
            out.append(MASK)
        elif _secret_flag(arg) and "=" in arg:
            out.append(arg.partition("=")[0] + "=" + MASK)
        else:
            out.append(redact(arg, values))
    return out


class _RedactingFactory:
    """A LogRecord factory around Logging's current one that masks the secrets in each record.

    A factory, not a filter on the root logger: a logger's filters never see the records that
    propagate from its children (`apache_beam.options.pipeline_options`), and a handler's
    filters miss the handlers added later (Airflow's task handler, absl's).
    """

    def __init__(self, base) -> None:
        self.base = base
        self.values: set[str] = set()

    def __call__(self, *args, **kwargs) -> logging.LogRecord:
        record = self.base(*args, **kwargs)
        if not self.values:
            return record
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is the handler's to report
            message = str(record.msg)
        masked = redact(message, self.values)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text, self.values)
        return record


def install_log_redaction(values: Iterable[str]) -> None:
    """From now on every log record of this process has `values` masked (adds to the values
    an earlier call installed). Nothing to mask: nothing changes."""
    values = {v for v in values if v}
    if not values:
        return
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RedactingFactory):
        factory = _RedactingFactory(factory)
        logging.setLogRecordFactory(factory)
    factory.values.update(values)
