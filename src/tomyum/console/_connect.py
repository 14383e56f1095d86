"""What the console asks of a Kafka Connect worker, through its REST API only, so that it works
with ``tomyum connect`` and Apache Kafka Connect alike (standalone or distributed: a distributed
worker forwards writes to its leader).

Every call blocks (the web layer runs it in a worker thread) and is bounded by ``timeout``.
Errors are :class:`ConnectError`, one line: the worker's own message where it gave one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

#: the console's buttons, as Kafka Connect's REST API spells them: (method, path after the name, query)
ACTIONS: dict[str, tuple[str, str, dict[str, str]]] = {
    "pause": ("PUT", "/pause", {}),
    "resume": ("PUT", "/resume", {}),
    "stop": ("PUT", "/stop", {}),
    "restart": ("POST", "/restart", {"includeTasks": "true", "onlyFailed": "false"}),
    "restart-failed": ("POST", "/restart", {"includeTasks": "true", "onlyFailed": "true"}),
    "delete": ("DELETE", "", {}),
}


class ConnectError(Exception):
    """A Connect worker's refusal or absence, in one line."""


class ConnectCluster:
    """The Connect worker at ``url`` (``http://host:8083``), as its REST API shows it."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, path, params=params)
        except httpx.HTTPError as e:
            raise ConnectError(f"the Connect worker at {self.url} did not answer: {e}") from None
        if response.status_code >= 400:
            try:
                message = response.json().get("message") or response.text
            except ValueError:
                message = response.text
            raise ConnectError(f"{method} {path}: HTTP {response.status_code}: {message}".strip())
        return response.json() if response.content else None

    def worker(self) -> dict[str, Any]:
        """The worker's version, commit and Kafka cluster id (``GET /``)."""
        info: dict[str, Any] = self._call("GET", "/")
        return info

    def connectors(self) -> list[dict[str, Any]]:
        """Every connector with its type, class, state, worker and tasks, sorted by name."""
        expanded = self._call("GET", "/connectors", {"expand": ["status", "info"]})
        rows = []
        for name, both in sorted(expanded.items()):
            status, info = both.get("status", {}), both.get("info", {})
            config = info.get("config", {})
            rows.append({
                "name": name, "type": status.get("type") or info.get("type", ""),
                "class": config.get("connector.class", ""),
                "state": status.get("connector", {}).get("state", ""),
                "worker": status.get("connector", {}).get("worker_id", ""),
                "trace": status.get("connector", {}).get("trace", ""),
                "tasks": sorted(({"id": t.get("id"), "state": t.get("state", ""), "worker": t.get("worker_id", ""),
                                  "trace": t.get("trace", "")} for t in status.get("tasks", [])),
                                key=lambda t: t["id"]),
                "topics": config.get("topics") or config.get("topic") or config.get("topics.regex", ""),
            })
        return rows

    def act(self, name: str, action: str) -> None:
        """One of :data:`ACTIONS` on connector ``name``."""
        if action not in ACTIONS:
            raise ConnectError(f"no such action: {action}")
        method, suffix, params = ACTIONS[action]
        self._call(method, f"/connectors/{quote(name, safe='')}{suffix}", params or None)
