"""The files `beamline promote` writes for a running server, re-read while it serves.

What the files hold, their names and checks are the contract in serving_root.py (the writer,
beamline.metadata.labels_file, writes through it); this module watches them:

- The labels file (`<root>/serving/models.config`): a TF Serving ModelServerConfig. The models it
  lists are served with its version policy and labels; every other `<root>/serving/<model>/` is
  still discovered (latest version). Absent: discovery only.
- The routing file (`routing.json`): per-model canary percentages.

Both are written atomically (write + rename), so a read sees a whole file. Each poll re-reads
them (a few small reads a second cost microseconds, and catch an in-place edit that keeps the
size and mtime). A changed file that does not parse is logged and the last good one stays in
force; at start-up it is a ConfigError, as a bad --model_config_file is.
"""

from __future__ import annotations

import logging
from pathlib import Path

from beamline_serving.core.config import ModelSpec, discover_models, parse_model_config_text
from beamline_serving.core.serving_root import parse_routing_json
from beamline_serving.errors import ConfigError

log = logging.getLogger("beamline.serving")

# The files hold a few lines per model; read several times a second, so a runaway or hostile
# file must not be read (and held) whole.
MAX_WATCHED_FILE_BYTES = 1024 * 1024

_UNREAD = object()
_TOO_LARGE = object()


class WatchedFile:
    """A small text file whose changes (content, appearing, vanishing) are noticed on read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._text: object = _UNREAD

    def changed(self) -> tuple[bool, str | None]:
        """(whether the text differs from the last read, the text or None if absent)."""
        try:
            text = self._read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"Cannot read {self.path}: {exc}. It is written by `beamline promote`; fix its "
                "permissions or remove it."
            ) from None
        if text is _TOO_LARGE:
            if self._text is _TOO_LARGE:
                return False, None  # said once; the last good file stays in force
            self._text = _TOO_LARGE
            raise ConfigError(
                f"{self.path} is larger than {MAX_WATCHED_FILE_BYTES} bytes, so it is not read; "
                "the file `beamline promote` writes holds a few lines per model. Check what "
                "wrote it, and rewrite it (e.g. with `beamline promote`) or remove it."
            )
        changed = text != self._text
        self._text = text
        return changed, text

    def _read(self):
        """The text, None if the file is absent, or _TOO_LARGE (read no further than that)."""
        try:
            with open(self.path, "rb") as handle:
                data = handle.read(MAX_WATCHED_FILE_BYTES + 1)
        except FileNotFoundError:
            return None
        if len(data) > MAX_WATCHED_FILE_BYTES:
            return _TOO_LARGE
        return data.decode("utf-8")


class RootFiles:
    """The labels and routing files of one serving root, and the specs they give."""

    def __init__(
        self, serving_root: Path | None, labels_file: Path | None, routing_file: Path | None
    ) -> None:
        self.serving_root = serving_root
        self._labels = WatchedFile(labels_file) if labels_file is not None else None
        self._routing = WatchedFile(routing_file) if routing_file is not None else None
        self._managed: list[ModelSpec] | None = None
        self.canary_percents: dict[str, float] = {}

    def specs(self) -> list[ModelSpec]:
        """The labels file's models, then every other discovered model."""
        discovered = discover_models(self.serving_root) if self.serving_root is not None else []
        managed = self._managed
        if managed is None:
            return discovered
        names = {spec.name for spec in managed}
        return list(managed) + [spec for spec in discovered if spec.name not in names]

    def poll(self, strict: bool = False) -> tuple[bool, bool]:
        """Re-reads both files: (labels changed, routing changed). `strict` (start-up): a file
        that does not parse raises ConfigError; otherwise it is logged and the last good one
        stays."""
        return self._poll_labels(strict), self._poll_routing(strict)

    def _poll_labels(self, strict: bool) -> bool:
        if self._labels is None:
            return False
        try:
            changed, text = self._labels.changed()
            if not changed:
                return False
            if text is None:
                if self._managed is not None:
                    log.info("%s is gone: serving discovered models only", self._labels.path)
                self._managed = None
                return True
            specs = parse_model_config_text(text, str(self._labels.path))
        except ConfigError as exc:
            if strict:
                raise
            log.error("The labels file was not applied (the last good one stays): %s", exc)
            return False
        self._managed = specs
        log.info("Read the labels file %s (%d model(s))", self._labels.path, len(specs))
        return True

    def _poll_routing(self, strict: bool) -> bool:
        if self._routing is None:
            return False
        try:
            changed, text = self._routing.changed()
            if not changed:
                return False
            percents = {} if text is None else parse_routing_json(text, str(self._routing.path))
        except ConfigError as exc:
            if strict:
                raise
            log.error("The routing file was not applied (the last good one stays): %s", exc)
            return False
        self.canary_percents = percents
        log.info("Canary percentages from %s: %s", self._routing.path, percents or "(none)")
        return True
