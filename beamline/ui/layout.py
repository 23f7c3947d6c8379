"""The UI's page shell: the shared style sheet and script served by the UI itself, the
navigation bar, the Content-Security-Policy, and the clear page every failure renders as."""

from __future__ import annotations

from html import escape
from urllib.parse import quote, urlencode

from beamline.report.page import document

# Nothing but the UI's own origin: no CDN, no font, no frame, no form posting elsewhere.
# Inline style *attributes* are allowed (shared report pieces use a few); inline scripts are not.
META_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'"
)
# The header adds what a <meta> policy cannot carry.
CSP = META_CSP + "; frame-ancestors 'none'"
HEAD = (
    '<link rel="icon" href="/static/favicon.svg"><link rel="stylesheet" href="/static/style.css">'
    '<script src="/static/ui.js" defer></script>'
)


def q(value: str) -> str:
    """A path segment, percent-encoded."""
    return quote(value, safe="")


def url(path: str, **params: str | None) -> str:
    query = urlencode({k: v for k, v in params.items() if v})
    return path + ("?" + query if query else "")


def run_url(run_id: str) -> str:
    return "/runs/" + q(run_id)


def pipeline_url(pipeline: str) -> str:
    return "/pipelines/" + q(pipeline)


def model_url(pipeline: str, version: str) -> str:
    return f"/models/{q(pipeline)}/{q(str(version))}"


def data_version_url(pipeline: str, key: str) -> str:
    return f"/data/{q(pipeline)}/{q(key)}"


def experiments_url(pipeline: str) -> str:
    return "/experiments/" + q(pipeline)


def page(title: str, body: str, source: str = "") -> str:
    nav = (
        '<nav class="top"><b>Beamline</b><a href="/">Runs</a><a href="/pipelines">Pipelines'
        '</a><a href="/experiments">Experiments</a><a href="/compare">Compare</a>'
        + (f'<span class="muted">store <code>{escape(source)}</code></span>' if source else "")
        + '<span class="muted" id="live-status"></span></nav>'
    )
    return document(title, nav + body, head=HEAD, csp=META_CSP, style=False)


def error_page(status: int, title: str, message: str, source: str = "") -> str:
    """One clear paragraph: what is wrong and what to do (never a traceback)."""
    return page(
        title,
        f'<section id="error" data-status="{status}"><h1>{escape(title)}</h1>'
        f'<p class="anomaly">{escape(message)}</p><p><a href="/">Back to the runs</a></p>'
        "</section>",
        source,
    )
