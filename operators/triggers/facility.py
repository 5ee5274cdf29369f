"""Trigger: wait, without a worker slot, until an HPC system is usable."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from airflow.triggers.base import BaseTrigger, TriggerEvent

from sfapi_client.errors import SfApiError


def current_outage(outages: list[dict], now: datetime) -> dict | None:
    """The outage (``start_at``/``end_at`` ISO times) covering `now`, if any."""
    for outage in outages:
        start, end = outage.get("start_at"), outage.get("end_at")
        if start and end and datetime.fromisoformat(start) <= now < datetime.fromisoformat(end):
            return outage
    return None


def check_system(client, system: str) -> tuple[bool, str]:
    """(usable, why) of `system`: active or degraded and not inside a planned outage."""
    status = client.status(system)
    if status.get("status") not in ("active", "degraded"):
        return False, f"{system} is {status.get('status')}: {'; '.join(status.get('notes') or [])}"
    outage = current_outage(client.outages(system), datetime.now(UTC))
    if outage:
        return (
            False,
            f"{system} in planned outage until {outage['end_at']}: {outage.get('description', '')}",
        )
    return True, f"{system} is {status['status']}"


class FacilityAvailableTrigger(BaseTrigger):
    """Polls ``/status/{system}`` and the planned outages every `poll_seconds` until usable.

    API errors count as "not yet" (the center may be the thing that is down); the run is never
    failed by an outage, only delayed.
    """

    def __init__(
        self, system: str, sfapi_conn_id: str = "sfapi_default", poll_seconds: float = 30.0
    ):
        super().__init__()
        self.system = system
        self.sfapi_conn_id = sfapi_conn_id
        self.poll_seconds = poll_seconds

    def serialize(self):
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "system": self.system,
                "sfapi_conn_id": self.sfapi_conn_id,
                "poll_seconds": self.poll_seconds,
            },
        )

    def _check(self) -> tuple[bool, str]:
        from operators.hooks.sfapi import SfApiHook

        try:
            with SfApiHook(self.sfapi_conn_id, retries=0).get_client() as client:
                return check_system(client, self.system)
        except SfApiError as exc:
            return False, f"status of {self.system} unavailable: {exc}"

    async def run(self):
        while True:
            usable, why = await asyncio.to_thread(self._check)
            if usable:
                yield TriggerEvent({"available": True, "status": why})
                return
            self.log.info("waiting for %s: %s", self.system, why)
            await asyncio.sleep(self.poll_seconds)
