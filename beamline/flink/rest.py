"""The few calls of Flink's REST API Beamline makes (stdlib HTTP, short timeouts).

https://nightlies.apache.org/flink/flink-docs-release-1.19/docs/ops/rest_api/
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

# Jobs in these states still hold (or wait for) slots.
LIVE_STATES = frozenset({
    "INITIALIZING", "CREATED", "RUNNING", "RESTARTING", "FAILING", "CANCELLING", "RECONCILING",
    "SUSPENDED",
})


class RestError(Exception):
    """Flink's REST API did not answer, or answered with an error."""


@dataclass(frozen=True)
class Job:
    jid: str
    name: str
    state: str

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES


def base_url(master: str) -> str:
    master = master.rstrip("/")
    return master if "://" in master else f"http://{master}"


class FlinkRest:
    def __init__(self, master: str, timeout: float = 5.0) -> None:
        self.master = master
        self.url = base_url(master)
        self.timeout = timeout

    def _call(self, method: str, path: str) -> dict:
        request = urllib.request.Request(self.url + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise RestError(f"{method} {self.url}{path}: HTTP {exc.code} {detail}") from exc
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RestError(f"{method} {self.url}{path}: {reason}") from exc
        return json.loads(body) if body.strip() else {}

    def overview(self) -> dict:
        return self._call("GET", "/overview")

    def taskmanagers(self) -> dict[str, int]:
        """The registered TaskManagers: id -> number of slots."""
        data = self._call("GET", "/taskmanagers")
        return {t["id"]: int(t.get("slotsNumber") or 0) for t in data.get("taskmanagers", [])}

    def jobs(self) -> list[Job]:
        data = self._call("GET", "/jobs/overview")
        return [Job(j["jid"], j.get("name", ""), j.get("state", "")) for j in data.get("jobs", [])]

    def job(self, jid: str) -> Job:
        data = self._call("GET", f"/jobs/{jid}")
        return Job(data["jid"], data.get("name", ""), data.get("state", ""))

    def cancel(self, jid: str) -> None:
        """PATCH /jobs/<id>?mode=cancel (202 Accepted)."""
        self._call("PATCH", f"/jobs/{jid}?mode=cancel")

    def root_exception(self, jid: str) -> str:
        """The job's root exception as Flink reports it ("" when none)."""
        data = self._call("GET", f"/jobs/{jid}/exceptions")
        history = data.get("exceptionHistory") or {}
        entries = history.get("entries") or []
        if entries:
            return str(entries[0].get("stacktrace") or entries[0].get("exceptionName") or "")
        return str(data.get("root-exception") or "")

    def answers(self) -> bool:
        try:
            self.overview()
        except RestError:
            return False
        return True
