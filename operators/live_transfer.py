"""Operator: follow a live run's chunks to the center as they close.

The task moves what the run needs first (``STARTED.json``'s files), then looks for the next
chunks with :class:`~operators.triggers.chunk_closed.ChunkClosedTrigger`, run in its own worker
for up to ``live_linger_seconds`` at a time: each chunk that closes within it is moved at once
(files, then chunk marker: :func:`operators.chunk_transfer.transfer_chunk`). Only when none came
in one linger does it defer on the same trigger (no worker slot while the DAQ pauses), and each
time that fires it moves the chunks and lingers again. At the run marker it moves the rest and
``CONCLUDED.json`` last; when no chunk and no run marker came for ``live_timeout`` seconds it
flags the run stalled and ends, so the DAG goes on to wait for the job (which ends "stalled"
itself), merge and publish what there is. A retried task starts again from chunk 0 and skips, at
the cost of one ``stat`` each, the chunks whose marker is at the center already. After each
batch it records the images of the chunks closed so far (the dashboard's "n/N so far").

While it follows the run it also looks after the run's live job (``job``, at most every
``job_poll[-1]`` seconds, between batches): a job that ended unsuccessfully is replaced at once
(:meth:`operators.analysis_job.JobStep.job_for`, not during an outage), and the replacement
resumes from the checkpoint while the run still acquires, instead of at the run's end.
"""

from __future__ import annotations

import asyncio
import time

from airflow.sdk import BaseOperator

from kernels.io.chunk_marker import chunk_marker_name
from operators.analysis_job import JobStep
from operators.chunk_transfer import CopyOptions, finish_run, transfer_chunk, transfer_started
from operators.hooks.sfapi import SfApiHook
from operators.pipeline.live import (
    record_known_images,
    record_live_end,
    record_stall,
    stall_reason,
)
from operators.settings import load_beamtime
from operators.triggers.chunk_closed import ChunkClosedTrigger


def run_folders(bt) -> tuple[str, str]:
    """The runs folders at the beamline and at the center (transfer URLs)."""
    return f"{bt.transfer_source}/runs", f"{bt.transfer_dest}/runs"


def copy_options(bt) -> CopyOptions:
    return CopyOptions(parallel_files=bt.transfer_parallel_files)


class LiveTransferOperator(BaseOperator):
    """Move the chunks of live run ``info["run"]`` as they close; return the transfer report.

    Parameters
    ----------
    info : dict (templated) — ``prepare``'s output (run, run_id, trial_id, started)
    job : dict (templated), optional — the live job's :class:`~operators.analysis_job.JobStep`
        fields (machine, script, key, workdir, accept_exit_codes): replaced while the run goes on
        when it dies
    poll_interval : seconds between looks for new chunks (or the Redis blocking read)
    settle_seconds : wait of each deferral before its first look (apache/airflow#71580)
    """

    template_fields = ("info", "job")

    def __init__(
        self,
        *,
        info,
        job: dict | None = None,
        poll_interval: float = 0.5,
        settle_seconds: float = 5.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.info = info
        self.job = job
        self.poll_interval = poll_interval
        self.settle_seconds = settle_seconds

    def execute(self, context):
        bt = load_beamtime()
        source, dest = run_folders(bt)
        started = time.monotonic()
        moved = transfer_started(
            source,
            dest,
            self.info["run"],
            self.info["started"],
            copy_options(bt),
        )
        state = {"next_chunk": 0, "stream_id": "0", "moved": moved, "chunks": [], "events": 0}
        state["known"] = []  # names of the chunk markers and files this task brought
        state |= {"seconds": time.monotonic() - started, "deadline": time.time() + bt.live_timeout}
        state["job_checked"] = time.time()  # submit_live_job has just submitted or found it
        return self._follow(bt, state)

    def _trigger(self, bt, state: dict, deadline: float, settle: float) -> ChunkClosedTrigger:
        return ChunkClosedTrigger(
            exp_dir=bt.exp_dir,
            run_name=self.info["run"],
            next_chunk=state["next_chunk"],
            deadline=deadline,
            source=bt.event_source,
            poll_interval=self.poll_interval,
            stream_id=state["stream_id"],
            settle_seconds=settle,
            carry=state,
        )

    def _follow(self, bt, state: dict):
        """Look in the worker for ``bt.live_linger_seconds`` at a time, moving what comes; defer
        once nothing came in one. Chunks closing within it skip the deferral round trip (the
        trigger's settle and a task resume: most of a chunk's latency otherwise). A loop, not
        recursion: a run may have thousands of batches."""
        while True:
            self._look_after_job(bt, state)
            until = min(state["deadline"], time.time() + bt.live_linger_seconds)
            event = asyncio.run(first_event(self._trigger(bt, state, until, settle=0.0)))
            if event["stalled"] and time.time() < state["deadline"]:
                self.defer(
                    trigger=self._trigger(bt, state, state["deadline"], self.settle_seconds),
                    method_name="chunks_closed",
                )
            report = self._handle(bt, event)
            if report is not None:
                return report
            state = event["carry"]  # the trigger hands back its own copy, updated by _handle

    def _look_after_job(self, bt, state: dict) -> None:
        """Replace the live job if it ended unsuccessfully; at most every ``job_poll[-1]`` s.

        A failure here only costs the early replacement (``wait_for_job`` replaces it at the
        run's end), so it is logged, not raised: the chunks must keep moving.
        """
        if self.job is None or time.time() < state["job_checked"] + bt.job_poll[-1]:
            return
        state["job_checked"] = time.time()
        step = JobStep(**self.job | {"accept_exit_codes": tuple(self.job["accept_exit_codes"])})
        try:
            with SfApiHook(bt.sfapi_conn_id).get_client() as client:
                step.job_for(client, self.log)
        except Exception as exc:  # see the docstring: logged, never raised
            self.log.warning("could not look after live job %s: %s", step.key, exc)

    def chunks_closed(self, context, event: dict):
        """Resumed by the trigger: move its chunks, then finish, flag a stall or follow on."""
        bt = load_beamtime()
        report = self._handle(bt, event)
        return report if report is not None else self._follow(bt, event["carry"])

    def _handle(self, bt, event: dict) -> dict | None:
        """Move the event's chunks; the task's result at the run's end or stall, else None."""
        source, dest = run_folders(bt)
        state = event["carry"]
        started = time.monotonic()
        for marker in event["chunks"]:
            moved = transfer_chunk(source, dest, self.info["run"], marker, copy_options(bt))
            state["moved"] += moved["bytes"]
            state["chunks"].append(marker["chunk"])
            state["known"] += [chunk_marker_name(self.info["run"], marker["chunk"])]
            state["known"] += [f["name"] for f in marker["files"]]
            state["events"] += marker["events"]
            state["next_chunk"] = marker["chunk"] + 1
            state["deadline"] = time.time() + bt.live_timeout
            self.log.info(
                "chunk %s of %s at the center: %s", marker["chunk"], self.info["run"], moved
            )
        state["seconds"] += time.monotonic() - started
        state["stream_id"] = event["stream_id"]
        if event["chunks"] and not event["concluded"]:
            record_known_images(bt, self.info, state["events"])
        if event["concluded"]:
            report = finish_run(
                source,
                dest,
                self.info["run"],
                event["concluded"],
                state["seconds"],
                state["moved"],
                copy_options(bt),
                known=state["known"],
            ).to_dict()
            record_known_images(bt, self.info, state["events"] + report["late_chunk_events"])
            record_live_end(bt, self.info, report, event["concluded"]["concluded_at"])
            return report | {"chunks": state["chunks"], "stalled": False}
        if event["stalled"]:
            reason = stall_reason(self.info["run"], bt.live_timeout, len(state["chunks"]))
            self.log.warning("%s", reason)
            record_stall(bt, self.info, reason)
            return {"chunks": state["chunks"], "stalled": True, "reason": reason}
        return None


async def first_event(trigger: ChunkClosedTrigger) -> dict:
    """The payload of the trigger's first event, run in this process (the task's linger)."""
    async for event in trigger.run():
        return event.payload
    raise RuntimeError(f"{trigger!r} ended without an event")
