"""Sensor: go on only when the HPC system is usable; otherwise defer until it is."""

from __future__ import annotations

from airflow.sdk import BaseSensorOperator

from operators.run_state import record_waiting
from operators.triggers.facility import FacilityAvailableTrigger, system_usable


class FacilityAvailableSensor(BaseSensorOperator):
    """Check ``/status/{system}`` and planned outages once; defer while down or in an outage.

    Always deferrable: the waiting happens in the triggerer (no worker slot), which polls every
    `poll_seconds`. A down center delays the run, it never fails it: there is no sensor timeout,
    and an unreachable status API counts as "not yet". Returns the status line (XCom).
    """

    def __init__(
        self,
        *,
        system: str,
        sfapi_conn_id: str = "sfapi_default",
        poll_seconds: float = 30.0,
        **kwargs,
    ):
        super().__init__(poke_interval=poll_seconds, timeout=None, **kwargs)
        self.system = system
        self.sfapi_conn_id = sfapi_conn_id
        self.poll_seconds = poll_seconds

    def poke(self, context) -> bool:
        usable, why = system_usable(self.sfapi_conn_id, self.system)
        self.log.info("%s", why)
        return usable

    def execute(self, context):
        usable, why = system_usable(self.sfapi_conn_id, self.system)
        if usable:
            self.log.info("%s", why)
            return why
        self.log.info("deferring: %s", why)
        record_waiting(
            context, why
        )  # the dashboard says why the run waits (a no-op outside sfx_run)
        self.defer(
            trigger=FacilityAvailableTrigger(self.system, self.sfapi_conn_id, self.poll_seconds),
            method_name="execute_complete",
        )

    def execute_complete(self, context, event: dict):
        self.log.info("%s", event["status"])
        return event["status"]
