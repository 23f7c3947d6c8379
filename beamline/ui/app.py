"""The UI's WSGI application (Werkzeug): routes, the token check, security headers, and the
mapping of every failure to a clear page with a 4xx/5xx status, never a traceback.

Only GET and HEAD exist; nothing a request carries reaches the filesystem (static files are a
fixed table) or the store other than as a lookup key.
"""

from __future__ import annotations

import hmac
import json
import re
import sys
import traceback
from importlib import resources
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, RequestRedirect, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from beamline.errors import BeamlineError, ConfigError, MetadataUnreachable
from beamline.experiments.where import WhereError
from beamline.lineage.runs import UnknownRun
from beamline.report.page import STYLE
from beamline.ui import (
    canary_view,
    compare_page,
    data_version_page,
    experiments_page,
    loop_page,
    model_page,
    run_page,
    runs_page,
)
from beamline.ui.layout import CSP, error_page
from beamline.ui.store import Reader

TOKEN_COOKIE = "beamline_ui_token"
# Run ids are timestamps or orchestrator run names; anything else is refused before any lookup.
_SAFE = re.compile(r"^[A-Za-z0-9_.:+@=~\-]{1,256}$")
_MAX_COLUMN = 300
_METRIC = re.compile(r"^[A-Za-z0-9_./\[\]=\-]{1,128}$")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" '
    b'rx="3" fill="#0969da"/><path d="M3 11h10M3 8h7M3 5h4" stroke="#fff" stroke-width="2"/></svg>'
)


class BadRequest(BeamlineError):
    """A query parameter or path segment the UI does not accept."""

    exit_code = 2


def _static_files() -> dict[str, tuple[bytes, str]]:
    script = resources.files("beamline.ui").joinpath("static/ui.js").read_bytes()
    return {
        "style.css": (STYLE.encode("utf-8"), "text/css; charset=utf-8"),
        "ui.js": (script, "text/javascript; charset=utf-8"),
        "favicon.svg": (FAVICON, "image/svg+xml"),
    }


def _checked(value: str | None, what: str, pattern: re.Pattern = _SAFE) -> str | None:
    if value is None or value == "":
        return None
    if not pattern.match(value):
        raise BadRequest(
            f"The {what} {value[:80]!r} is not valid here: use the links the UI shows (run ids, "
            "pipeline names and versions are letters, digits and . : _ - + only)."
        )
    return value


def host_name(header: str) -> str:
    """The name in a Host header without its port: `[::1]:8470` and `[::1]` both give `::1`."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.split(":", 1)[0]


class UiApp:
    """A WSGI callable over one Reader. `token`: when set, every request must carry it (the
    `token` query parameter once, then a cookie, or an `Authorization: Bearer` header)."""

    def __init__(
        self, reader: Reader, token: str | None = None, allowed_hosts=None,
        requests: Path | None = None, compare_hours: float = 24.0,
    ) -> None:
        self.reader = reader
        self.requests = requests
        self.compare_hours = compare_hours
        self.token = token
        self.allowed_hosts = allowed_hosts  # None: any Host header (a token guards the UI)
        self.static = _static_files()
        self.url_map = Map(
            [
                Rule("/", endpoint="runs"),
                Rule("/api/runs", endpoint="api_runs"),
                Rule("/runs/<path:run_id>", endpoint="run"),
                Rule("/api/runs/<path:run_id>", endpoint="api_run"),
                Rule("/compare", endpoint="compare"),
                Rule("/pipelines", endpoint="pipelines"),
                Rule("/pipelines/<path:pipeline>", endpoint="pipeline"),
                Rule("/models/<pipeline>/<version>", endpoint="model"),
                Rule("/data/<pipeline>/<key>", endpoint="data_version"),
                Rule("/experiments", endpoint="experiments_index"),
                Rule("/experiments/<pipeline>", endpoint="experiments"),
                Rule("/static/<name>", endpoint="static"),
                Rule("/healthz", endpoint="health"),
                Rule("/favicon.ico", endpoint="favicon"),
            ],
            strict_slashes=False,
        )

    # ------------------------------------------------------------------ WSGI

    def __call__(self, environ, start_response):
        request = Request(environ)
        response = self.respond(request)
        response.headers.update(SECURITY_HEADERS)
        return response(environ, start_response)

    def respond(self, request: Request) -> Response:
        api = request.path.startswith("/api/")
        try:
            if request.method not in ("GET", "HEAD"):
                raise MethodNotAllowed(valid_methods=["GET", "HEAD"])
            self._check_host(request)
            set_cookie = self._check_token(request)
            endpoint, args = self.url_map.bind_to_environ(request.environ).match()
            if set_cookie and not api:
                # Keep the token out of the address bar and history: cookie, then the same URL.
                rest = [(k, v) for k, v in request.args.items(multi=True) if k != "token"]
                response = redirect(request.path + ("?" + urlencode(rest) if rest else ""), 303)
            else:
                response = getattr(self, "on_" + endpoint)(request, **args)
            if set_cookie:
                response.set_cookie(
                    TOKEN_COOKIE, self.token, httponly=True, samesite="Strict", path="/"
                )
            return response
        except _Refused as refused:
            return self._error(refused.status, refused.title, refused.message, api)
        except RequestRedirect as moved:
            # Werkzeug redirects `/runs//x` to `/runs/x`. Its Location is absolute, built from
            # the client's Host header: keep only the path and query.
            target = urlsplit(moved.new_url)
            return redirect(urlunsplit(("", "", target.path, target.query, "")), moved.code)
        except HTTPException as exc:
            status = exc.code or 400
            title = {404: "Not found", 405: "Method not allowed"}.get(status, exc.name)
            message = {
                404: f"Nothing at {request.path[:200]!r}. The runs page links every page.",
                405: "This UI is read-only: only GET requests are served.",
            }.get(status, exc.description or exc.name)
            response = self._error(status, title, message, api)
            if status == 405:
                response.headers["Allow"] = "GET, HEAD"
            return response
        except (UnknownRun, model_page.UnknownVersion,
                data_version_page.UnknownDataVersion) as exc:
            return self._error(404, "Not found", str(exc), api)
        except BadRequest as exc:
            return self._error(400, "Bad request", str(exc), api)
        except MetadataUnreachable as exc:
            return self._error(503, "Metadata store unavailable", str(exc), api)
        except ConfigError as exc:
            return self._error(400, "Cannot show this", str(exc), api)
        except BeamlineError as exc:
            return self._error(422, "Cannot show this", str(exc), api)
        except Exception:  # noqa: BLE001 - a bug: log it, show a page, keep serving
            traceback.print_exc(file=sys.stderr)
            return self._error(
                500,
                "Internal error",
                "The UI failed to render this page (the traceback is in the terminal running "
                "`beamline ui`). Other pages still work; please report it.",
                api,
            )

    def _error(self, status: int, title: str, message: str, api: bool) -> Response:
        if api:
            return Response(
                json.dumps({"error": title, "message": message}),
                status=status,
                mimetype="application/json",
            )
        return Response(
            error_page(status, title, message, self.reader.source),
            status=status,
            mimetype="text/html",
        )

    def _check_host(self, request: Request) -> None:
        # Bound to loopback without a token: refuse other Host names (DNS rebinding).
        if self.allowed_hosts is None:
            return
        host = host_name(request.host or "")
        if host not in self.allowed_hosts:
            raise _Refused(
                421,
                "Wrong host",
                f"This UI answers on {', '.join(sorted(self.allowed_hosts))} only, not "
                f"{host[:100]!r}.",
            )

    def _check_token(self, request: Request) -> bool:
        """True when the token came in the query (then it is set as a cookie)."""
        if not self.token:
            return False
        given = request.args.get("token")
        if given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
            return True
        cookie = request.cookies.get(TOKEN_COOKIE, "")
        if cookie and hmac.compare_digest(cookie.encode(), self.token.encode()):
            return False
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and hmac.compare_digest(
            auth[7:].strip().encode(), self.token.encode()
        ):
            return False
        raise _Refused(
            401,
            "Token required",
            "This UI is shared beyond this machine, so every page needs its access token: open "
            "the URL `beamline ui` printed (…/?token=…), or send `Authorization: Bearer TOKEN`.",
        )

    # ------------------------------------------------------------------ pages

    def _html(self, text: str) -> Response:
        return Response(text, mimetype="text/html")

    def _json(self, data) -> Response:
        return Response(json.dumps(data, default=str), mimetype="application/json")

    def _filter(self, request: Request) -> runs_page.RunFilter:
        graph = self.reader.graph()
        pipeline = _checked(request.args.get("pipeline"), "pipeline")
        if pipeline and pipeline not in graph.pipelines():
            raise BadRequest(
                f"No pipeline {pipeline!r} in {graph.source}; pipelines with runs: "
                f"{', '.join(graph.pipelines()) or 'none'}."
            )
        state = request.args.get("state") or None
        if state and state not in runs_page.STATES:
            raise BadRequest(
                f"Unknown state {state[:40]!r}: use one of {', '.join(runs_page.STATES)}."
            )
        raw = request.args.get("limit") or str(runs_page.DEFAULT_LIMIT)
        if not raw.isdigit() or not 1 <= int(raw) <= runs_page.MAX_LIMIT:
            raise BadRequest(f"limit must be a number from 1 to {runs_page.MAX_LIMIT}.")
        return runs_page.RunFilter(pipeline, state, int(raw))

    def on_runs(self, request: Request) -> Response:
        flt = self._filter(request)
        graph = self.reader.graph()
        every = self.reader.summaries(graph, flt.pipeline)
        return self._html(runs_page.render(graph, flt, every))

    def on_api_runs(self, request: Request) -> Response:
        flt = self._filter(request)
        graph = self.reader.graph()
        every = self.reader.summaries(graph, flt.pipeline)
        return self._json(runs_page.fragment(graph, flt, every))

    def _run(self, run_id: str):
        _checked(run_id, "run id")
        graph = self.reader.graph()
        if run_id not in graph.runs:
            raise UnknownRun(
                f"No run {run_id!r} in {graph.source}. The runs page lists the runs there are."
            )
        return graph, graph.runs[run_id]

    def on_run(self, request: Request, run_id: str) -> Response:
        graph, run = self._run(run_id)
        monitoring = self.reader.run_monitoring(graph, run)
        return self._html(run_page.render(graph, run, self.reader.layout, monitoring))

    def on_api_run(self, request: Request, run_id: str) -> Response:
        graph, run = self._run(run_id)
        return self._json(run_page.fragment(graph, run, self.reader.layout))

    def on_compare(self, request: Request) -> Response:
        graph = self.reader.graph()
        a = _checked(request.args.get("a"), "run id")
        b = _checked(request.args.get("b"), "run id")
        if not a and not b:
            return self._html(compare_page.render_picker(graph))
        if not (a and b):
            raise BadRequest("Compare needs two runs: /compare?a=RUN&b=RUN.")
        _, run_a = self._run(a)
        _, run_b = self._run(b)
        return self._html(compare_page.render(graph, run_a, run_b))

    def on_pipelines(self, request: Request) -> Response:
        graph = self.reader.graph()
        return self._html(loop_page.render_index(graph, self.reader.label_changes()))

    def on_pipeline(self, request: Request, pipeline: str) -> Response:
        _checked(pipeline, "pipeline")
        graph = self.reader.graph()
        if pipeline not in graph.pipelines():
            raise NotFound()
        metric = _checked(request.args.get("metric"), "metric", _METRIC)
        changes = self.reader.label_changes(pipeline)
        compared = None
        if self.requests is not None:
            compared = canary_view.compare_labels(
                graph, pipeline, changes, self.requests, self.compare_hours
            )
        return self._html(
            loop_page.render(
                graph,
                pipeline,
                changes,
                self.reader.triggers(pipeline),
                self.reader.monitoring(pipeline),
                self.reader.summaries(graph, pipeline),
                metric,
                canary=canary_view.render(compared, self.requests, self.compare_hours),
            )
        )

    def on_model(self, request: Request, pipeline: str, version: str) -> Response:
        _checked(pipeline, "pipeline")
        _checked(version, "version")
        graph = self.reader.graph()
        return self._html(
            model_page.render(graph, pipeline, version, self.reader.label_changes(pipeline),
                              self.reader.kept_versions(pipeline, version))
        )

    def on_data_version(self, request: Request, pipeline: str, key: str) -> Response:
        _checked(pipeline, "pipeline")
        _checked(key, "data version")
        row = self.reader.data_version(pipeline, key)
        if row is None:
            raise data_version_page.unknown(pipeline, key, self.reader.source)
        return self._html(data_version_page.render(pipeline, row, self.reader.source))

    def on_experiments_index(self, request: Request) -> Response:
        graph = self.reader.graph()
        pipelines = graph.pipelines()
        counts = {p: len(graph.sorted_runs(p)) for p in pipelines}
        return self._html(experiments_page.render_index(pipelines, counts, graph.source))

    def _experiments_view(self, request: Request, pipeline: str) -> experiments_page.View:
        where = request.args.get("where", "").strip() or None
        if where is not None and len(where) > experiments_page.MAX_WHERE:
            raise BadRequest(f"The filter is longer than {experiments_page.MAX_WHERE} characters.")
        # Column names come from the store (metrics, hyperparameters): the table checks them.
        sort = request.args.get("sort") or None
        if sort is not None and len(sort) > _MAX_COLUMN:
            raise BadRequest(f"sort names no column (it is {len(sort)} characters long): click a "
                             "column's header to sort by it.")
        columns = request.args.get("columns") or None
        if columns is not None and len(columns) > experiments_page.MAX_WHERE:
            raise BadRequest(
                f"columns is longer than {experiments_page.MAX_WHERE} characters."
            )
        curves = list(dict.fromkeys(
            c for c in request.args.getlist("curve") if c
        ))
        if len(curves) > experiments_page.MAX_CURVES:
            raise BadRequest(
                f"Curves of at most {experiments_page.MAX_CURVES} runs at once, not {len(curves)}."
            )
        for run_id in curves:
            _checked(run_id, "run id")
        trials = list(dict.fromkeys(t for t in request.args.getlist("trial") if t))
        if len(trials) > experiments_page.MAX_TRIAL_CURVES:
            raise BadRequest(f"Curves of at most {experiments_page.MAX_TRIAL_CURVES} trials at "
                             f"once, not {len(trials)}.")
        for key in trials:
            run_id, _, trial_id = key.rpartition(experiments_page.TRIAL_SEPARATOR)
            if not run_id or not trial_id:
                raise BadRequest(f"The trial {key[:80]!r} is not RUN/TRIAL: check trials in the "
                                 "table to draw their curves.")
            _checked(run_id, "run id")
            _checked(trial_id, "trial id")
        raw = request.args.get("limit") or str(experiments_page.DEFAULT_LIMIT)
        if not raw.isdigit() or not 1 <= int(raw) <= experiments_page.MAX_LIMIT:
            raise BadRequest(f"limit must be a number from 1 to {experiments_page.MAX_LIMIT}.")
        return experiments_page.View(
            where, sort, request.args.get("experiment") or None, columns, curves, int(raw),
            trials,
        )

    def on_experiments(self, request: Request, pipeline: str) -> Response:
        _checked(pipeline, "pipeline")
        graph = self.reader.graph()
        if pipeline not in graph.pipelines():
            raise NotFound()
        view = self._experiments_view(request, pipeline)
        rows = self.reader.experiment_rows(graph, pipeline)
        runs = {str(r.get("run")) for r in rows}
        unknown = [c for c in view.curves if c not in runs]
        if unknown:
            raise BadRequest(
                f"No run {unknown[0]!r} of {pipeline!r}: check runs in the table to draw their "
                "curves."
            )
        known = {experiments_page.trial_key(c) for r in rows for c in r.children
                 if c.kind == experiments_page.TRIAL}
        strangers = [t for t in view.trials if t not in known]
        if strangers:
            raise BadRequest(
                f"No trial {strangers[0]!r} of {pipeline!r} (RUN/TRIAL): check trials in the "
                "table to draw their curves."
            )
        experiments = {r.get("experiment") for r in rows if r.get("experiment")}
        if view.experiment is not None and view.experiment not in experiments:
            raise BadRequest(
                f"No experiment {view.experiment[:80]!r} in {pipeline!r}; experiments: "
                f"{', '.join(sorted(map(str, experiments))) or 'none'}."
            )
        try:
            text = experiments_page.render(pipeline, graph.source, rows, view)
        except WhereError as exc:
            # The filter's own message beside the filter box, to fix it there.
            text = experiments_page.render(pipeline, graph.source, rows, view, error=str(exc))
            return Response(text, status=400, mimetype="text/html")
        return self._html(text)

    def on_static(self, request: Request, name: str) -> Response:
        if name not in self.static:
            raise NotFound()
        body, mimetype = self.static[name]
        return Response(body, mimetype=mimetype)

    def on_favicon(self, request: Request) -> Response:
        return self.on_static(request, "favicon.svg")

    def on_health(self, request: Request) -> Response:
        return self._json({"ok": True})


class _Refused(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message
