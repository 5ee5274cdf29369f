"""A small client of the emulator's ``/_emulator`` admin routes (status, outages, faults)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import requests


class EmulatorAdmin:
    """Calls the emulator's ``/_emulator`` admin routes."""

    def __init__(self, server_url: str, admin_token: str):
        self._url = server_url + "/_emulator"
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {admin_token}"

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        r = self._session.request(method, self._url + path, json=body, timeout=10)
        r.raise_for_status()
        return r.json()

    def set_status(self, system: str, status: str, notes: Sequence[str] = ()) -> dict:
        """Force ``system``'s status (active, unavailable, degraded, other)."""
        return self._call("PUT", f"/status/{system}", {"status": status, "notes": list(notes)})

    def schedule_outage(
        self,
        system: str,
        start: datetime,
        end: datetime,
        description: str = "scheduled maintenance",
    ) -> None:
        """Add an outage; while it is current, ``GET /status/{system}`` says unavailable."""
        self._call(
            "POST",
            "/outages",
            {
                "name": system,
                "start_at": start.isoformat(),
                "end_at": end.isoformat(),
                "description": description,
            },
        )

    def clear_outages(self) -> None:
        self._call("DELETE", "/outages")

    def inject_fault(
        self,
        kind: str,
        path: str = "/",
        method: str | None = None,
        count: int | None = 1,
        seconds: float = 0.0,
        status: int = 503,
    ) -> None:
        """Add a fault rule (see :mod:`facility.sfapi.faults`); ``path`` is a URL path prefix."""
        self._call(
            "POST",
            "/faults",
            {
                "kind": kind,
                "path": path,
                "method": method,
                "count": count,
                "seconds": seconds,
                "status": status,
            },
        )

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")
