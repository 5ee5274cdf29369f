"""Trigger: wait, without a worker slot, until a batch job at the HPC center has finished."""

from __future__ import annotations

import asyncio

from airflow.triggers.base import BaseTrigger, TriggerEvent

from operators.hooks.sfapi import SfApiHook
from sfapi_client.errors import NotFound, SfApiError

SETTLE_SECONDS = 5.0


class JobFinishedTrigger(BaseTrigger):
    """Polls one job's state with growing intervals (``poll`` = first, factor, max seconds).

    One API call per poll and at most one poll per `poll[2]` seconds once the job is long-running,
    so hundreds of waiting runs cannot flood the center's scheduler. Transient API errors are
    logged and retried; a job unknown to both squeue and sacct is reported as ``LOST``.
    """

    def __init__(
        self,
        machine: str,
        jobid: str,
        sfapi_conn_id: str = "sfapi_default",
        poll: tuple[float, float, float] = (1.0, 1.5, 30.0),
        lost_after: int = 5,
    ):
        super().__init__()
        self.machine = machine
        self.jobid = str(jobid)
        self.sfapi_conn_id = sfapi_conn_id
        self.poll = tuple(poll)
        self.lost_after = lost_after

    def serialize(self):
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "machine": self.machine,
                "jobid": self.jobid,
                "sfapi_conn_id": self.sfapi_conn_id,
                "poll": list(self.poll),
                "lost_after": self.lost_after,
            },
        )

    def _state(self, client) -> dict:
        job = client.job(self.machine, self.jobid)
        return {
            "jobid": job.jobid,
            "state": job.state,
            "finished": job.finished,
            "succeeded": job.succeeded,
            "exit_code": job.exit_code,
            "name": job.name,
        }

    async def run(self):
        delay, factor, maximum = self.poll
        missing = 0
        # let the deferring worker exit before a first event could resume the task (apache/airflow#71580)
        await asyncio.sleep(SETTLE_SECONDS)
        client = await asyncio.to_thread(SfApiHook(self.sfapi_conn_id, retries=1).get_client)
        try:
            while True:
                try:
                    state = await asyncio.to_thread(self._state, client)
                    missing = 0
                    if state["finished"]:
                        yield TriggerEvent(state)
                        return
                except NotFound:
                    missing += 1
                    if missing >= self.lost_after:
                        yield TriggerEvent(
                            {
                                "jobid": self.jobid,
                                "state": "LOST",
                                "finished": True,
                                "succeeded": False,
                                "exit_code": "",
                                "name": "",
                            }
                        )
                        return
                except SfApiError as exc:
                    self.log.warning("job %s state unavailable (will retry): %s", self.jobid, exc)
                await asyncio.sleep(delay)
                delay = min(delay * factor, maximum)
        finally:
            client.close()
