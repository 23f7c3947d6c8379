"""Starting the UI's HTTP server (Werkzeug's threaded WSGI server) with its safety rules:
loopback by default; any other address needs a token, checked on every request."""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from beamline.errors import ConfigError

TOKEN_ENV = "BEAMLINE_UI_TOKEN"
_TOKEN_IN_URL = re.compile(r"([?&]token=)[^&\s\"]*")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
TOKEN_GENERATED = "generated at start"


@dataclass(frozen=True)
class UiSettings:
    root: Path
    metadata: str | None
    host: str = "127.0.0.1"
    port: int = 8470
    token_file: Path | None = None
    requests: Path | None = None  # `beamline serve --request_log_dir`: stable against canary
    compare_hours: float = 24.0  # the comparison's window: the last this many hours


def resolve_token(settings: UiSettings) -> tuple[str | None, str | None]:
    """(token or None, where it came from: `--token-file PATH`, `$BEAMLINE_UI_TOKEN` or
    TOKEN_GENERATED; None without a token)."""
    if settings.token_file is not None:
        try:
            token = settings.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"Cannot read --token-file {settings.token_file} ({exc.strerror}): give a "
                "readable file holding the token on one line."
            ) from None
        if len(token) < 16:
            raise ConfigError(
                f"The token in {settings.token_file} is shorter than 16 characters: use a long "
                "random one, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(24))'`."
            )
        return token, f"--token-file {settings.token_file}"
    if os.environ.get(TOKEN_ENV):
        token = os.environ[TOKEN_ENV].strip()
        if len(token) < 16:
            raise ConfigError(f"${TOKEN_ENV} is shorter than 16 characters: use a long random one.")
        return token, f"${TOKEN_ENV}"
    if settings.host in LOOPBACK:
        return None, None
    return secrets.token_urlsafe(24), TOKEN_GENERATED


def make_app(settings: UiSettings, token: str | None):
    from beamline.ui.app import UiApp
    from beamline.ui.store import Reader

    allowed = None
    if settings.host in LOOPBACK and not token:
        allowed = {"127.0.0.1", "localhost", "::1"}
    return UiApp(
        Reader(settings.root, settings.metadata), token=token, allowed_hosts=allowed,
        requests=settings.requests, compare_hours=settings.compare_hours,
    )


def make_server(settings: UiSettings, app):
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        # The live pages poll every 2 s: log failures, not each poll and asset.
        def log_request(self, code="-", size="-") -> None:
            ok = str(code).startswith(("2", "3"))
            if ok and self.path.startswith(("/api/", "/static/", "/healthz")):
                return
            super().log_request(code, size)

        def log(self, type: str, message: str, *args) -> None:  # noqa: A002 - Werkzeug's name
            # Never write the access token to the terminal or a log file.
            text = _TOKEN_IN_URL.sub(r"\1***", message % args if args else message)
            super().log(type, "%s", text)

    def refused(reason: str) -> ConfigError:
        return ConfigError(
            f"Cannot listen on {settings.host}:{settings.port} ({reason}): pick another --port "
            "(0 picks a free one) or stop what holds it."
        )

    # Werkzeug reports a taken port itself and exits; check first to say it in one paragraph.
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.host, settings.port))
        except OSError as exc:
            raise refused(exc.strerror or str(exc)) from None
    # One line per request: Werkzeug's own handler, not a second copy through the root logger.
    logging.getLogger("werkzeug").propagate = False
    try:
        return make_server(
            settings.host, settings.port, app, threaded=True, request_handler=QuietHandler
        )
    except (OSError, SystemExit) as exc:
        raise refused(getattr(exc, "strerror", None) or "the address is taken") from None


def url_of(host: str, port: int, token: str | None) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def startup_lines(settings: UiSettings, port: int, token: str | None, source: str | None):
    """What `beamline ui` prints at start. The token is printed only when it was generated here:
    one the operator supplied stays out of the terminal, journald and CI logs."""
    generated = source == TOKEN_GENERATED
    address = url_of(settings.host, port, token if generated else None)
    lines = [f"Beamline UI on {address} (store under {settings.root}; read-only; Ctrl-C stops it)"]
    if generated:
        lines.append(f"Access token (every page checks it): {token}")
    elif token:
        lines.append(
            f"Access token: from {source}, not printed (every page checks it): open the URL "
            "with ?token=TOKEN once, or send `Authorization: Bearer TOKEN`."
        )
    return lines
