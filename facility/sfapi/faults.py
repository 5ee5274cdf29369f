"""Faults injected on purpose, so clients can be tested against a misbehaving center.

Kinds:

- ``latency``: wait ``seconds`` before handling the request.
- ``http_error``: answer ``status`` (default 503) without handling the request.
- ``drop``: handle the request, then cut the connection after the response headers, so the
  caller never learns the outcome (the case idempotent submission exists for).
- ``task_stuck``: a job submission's task stays ``new`` (until cancelled) and no job is created.
- ``submit_delay``: a job submission's ``sbatch`` runs ``seconds`` after the POST was answered.

Each rule applies to requests whose path starts with ``path`` (and whose method is ``method``
if given), ``count`` times or, with ``count`` null, until cleared.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass

FAULT_KINDS = ("latency", "http_error", "drop", "task_stuck", "submit_delay")
ADMIN_PREFIX = "/_emulator"


@dataclass
class FaultRule:
    """One injected fault; see the module docstring for the kinds."""

    kind: str
    path: str = "/"
    method: str | None = None
    count: int | None = 1
    seconds: float = 0.0
    status: int = 503

    def __post_init__(self):
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {FAULT_KINDS}")
        if not 400 <= self.status <= 599:
            raise ValueError(f"fault status must be an HTTP error code, not {self.status}")


class FaultInjector:
    """The active fault rules; :meth:`take` consumes one use of the first matching rule."""

    def __init__(self):
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, kinds: tuple[str, ...], method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if (
                    rule.kind in kinds
                    and path.startswith(rule.path)
                    and rule.method in (None, method.upper())
                ):
                    if rule.count is not None:
                        rule.count -= 1
                        if rule.count <= 0:
                            self._rules.remove(rule)
                    return rule
        return None


class FaultMiddleware:
    """ASGI middleware applying ``latency``, ``http_error`` and ``drop`` rules."""

    def __init__(self, app, faults: FaultInjector):
        self.app, self.faults = app, faults

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            return await self.app(scope, receive, send)
        method, path = scope["method"], scope["path"]
        rule = self.faults.take(("latency",), method, path)
        if rule is not None:
            await asyncio.sleep(rule.seconds)
        rule = self.faults.take(("http_error",), method, path)
        if rule is not None:
            body = json.dumps({"detail": f"injected fault: HTTP {rule.status}"}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": rule.status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            return await send({"type": "http.response.body", "body": body})
        if self.faults.take(("drop",), method, path) is None:
            return await self.app(scope, receive, send)

        async def headers_only(message):
            # The request is handled in full, but only the headers go out: the server then
            # closes the connection, and the caller sees it drop mid-response.
            if message["type"] == "http.response.start":
                await send(message)

        await self.app(scope, receive, headers_only)
