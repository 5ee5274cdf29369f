"""Trigger: wait, without a worker slot, until an HPC system is usable."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from airflow.triggers.base import BaseTrigger, TriggerEvent

from operators.hooks.sfapi import SfApiHook
from operators.triggers.job import SETTLE_SECONDS
from sfapi_client.errors import FacilityUnavailable, SfApiError


def current_outage(outages: list[dict], now: datetime) -> dict | None:
    """The outage (``start_at``/``end_at`` ISO times) covering `now`, if any."""
    for outage in outages:
        start, end = outage.get("start_at"), outage.get("end_at")
        if start and end and datetime.fromisoformat(start) <= now < datetime.fromisoformat(end):
            return outage
    return None


def check_system(client, system: str) -> tuple[bool, str]:
    """(usable, why) of `system`: usable by the client's own rule (``require_available``) and
    not inside a planned outage."""
    try:
        status = client.require_available(system)
    except FacilityUnavailable as exc:
        return False, str(exc)
    outage = current_outage(client.outages(system), datetime.now(UTC))
    if outage:
        return (
            False,
            f"{system} in planned outage until {outage['end_at']}: {outage.get('description', '')}",
        )
    return True, f"{system} is {status['status']}"


def system_usable(sfapi_conn_id: str, system: str) -> tuple[bool, str]:
    """:func:`check_system` through the connection; an API error is "not usable", with its reason
    (the center may be the thing that is down)."""
    try:
        with SfApiHook(sfapi_conn_id, retries=0).get_client() as client:
            return check_system(client, system)
    except SfApiError as exc:
        return False, f"status of {system} unavailable: {exc}"


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

    async def run(self):
        # let the deferring worker exit before a first event could resume the task (Airflow 3.3
        # fails a task resumed that early: apache/airflow#71580; seen with a short outage left)
        await asyncio.sleep(SETTLE_SECONDS)
        while True:
            usable, why = await asyncio.to_thread(system_usable, self.sfapi_conn_id, self.system)
            if usable:
                yield TriggerEvent({"available": True, "status": why})
                return
            self.log.info("waiting for %s: %s", self.system, why)
            await asyncio.sleep(self.poll_seconds)
