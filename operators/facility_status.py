"""Operator: go on only when the HPC system is usable; otherwise defer until it is."""

from __future__ import annotations

from airflow.sdk import BaseOperator

from operators.hooks.sfapi import SfApiHook
from operators.triggers.facility import FacilityAvailableTrigger, check_system
from sfapi_client.errors import SfApiError


class WaitForFacilityOperator(BaseOperator):
    """Check ``/status/{system}`` and planned outages once; defer while down or in an outage.

    A down center delays the run, it never fails it: the trigger polls every `poll_seconds`
    and the run resumes by itself when the system is back.
    """

    def __init__(
        self,
        *,
        system: str,
        sfapi_conn_id: str = "sfapi_default",
        poll_seconds: float = 30.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.system = system
        self.sfapi_conn_id = sfapi_conn_id
        self.poll_seconds = poll_seconds

    def execute(self, context):
        try:
            with SfApiHook(self.sfapi_conn_id, retries=0).get_client() as client:
                usable, why = check_system(client, self.system)
        except SfApiError as exc:
            usable, why = False, f"status unavailable: {exc}"
        if usable:
            self.log.info("%s", why)
            return why
        self.log.info("deferring: %s", why)
        self.defer(
            trigger=FacilityAvailableTrigger(self.system, self.sfapi_conn_id, self.poll_seconds),
            method_name="execute_complete",
        )

    def execute_complete(self, context, event: dict):
        self.log.info("%s", event["status"])
        return event["status"]
