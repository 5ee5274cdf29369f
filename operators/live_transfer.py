"""Operator: follow a live run's chunks to the center as they close, without holding a worker.

The task moves what the run needs first (``STARTED.json``'s files), then defers on
:class:`~operators.triggers.chunk_closed.ChunkClosedTrigger`; each time it fires, the task
moves the new chunks (files, then chunk marker: :func:`operators.chunk_transfer.transfer_chunk`)
and defers again with the next chunk number. At the run marker it moves the rest and
``CONCLUDED.json`` last; when no chunk and no run marker came for ``live_timeout`` seconds it
flags the run stalled and ends, so the DAG goes on to wait for the job (which ends "stalled"
itself), merge and publish what there is. A retried task starts again from chunk 0 and skips, at
the cost of one ``stat`` each, the chunks whose marker is at the center already.
"""

from __future__ import annotations

import time

from airflow.sdk import BaseOperator

from operators.chunk_transfer import CopyOptions, finish_run, transfer_chunk, transfer_started
from operators.pipeline.live import record_live_end, record_stall, stall_reason
from operators.settings import load_beamtime
from operators.triggers.chunk_closed import ChunkClosedTrigger


def copy_options(bt) -> CopyOptions:
    return CopyOptions(parallel_files=bt.transfer_parallel_files)


class LiveTransferOperator(BaseOperator):
    """Move the chunks of live run ``info["run"]`` as they close; return the transfer report.

    Parameters
    ----------
    info : dict (templated) — ``prepare``'s output (run, run_id, trial_id, started)
    poll_interval : seconds between looks for new chunks (or the Redis blocking read)
    settle_seconds : wait of each deferral before its first look (apache/airflow#71580)
    """

    template_fields = ("info",)

    def __init__(self, *, info, poll_interval: float = 0.5, settle_seconds: float = 5.0, **kwargs):
        super().__init__(**kwargs)
        self.info = info
        self.poll_interval = poll_interval
        self.settle_seconds = settle_seconds

    def _ends(self):
        bt = load_beamtime()
        return bt, f"{bt.transfer_source}/runs", f"{bt.transfer_dest}/runs"

    def execute(self, context):
        bt, source, dest = self._ends()
        started = time.monotonic()
        moved = transfer_started(
            source,
            dest,
            self.info["run"],
            self.info["started"],
            copy_options(bt),
        )
        state = {"next_chunk": 0, "stream_id": "0", "moved": moved, "chunks": []}
        self._wait(bt, state | {"seconds": time.monotonic() - started})

    def _wait(self, bt, state: dict) -> None:
        self.defer(
            trigger=ChunkClosedTrigger(
                exp_dir=bt.exp_dir,
                run_name=self.info["run"],
                next_chunk=state["next_chunk"],
                deadline=time.time() + bt.live_timeout,
                source=bt.event_source,
                poll_interval=self.poll_interval,
                stream_id=state["stream_id"],
                settle_seconds=self.settle_seconds,
                carry=state,
            ),
            method_name="chunks_closed",
        )

    def chunks_closed(self, context, event: dict):
        """Move the chunks the trigger found; finish, flag a stall, or wait for more."""
        bt, source, dest = self._ends()
        state = event["carry"]
        started = time.monotonic()
        for marker in event["chunks"]:
            moved = transfer_chunk(source, dest, self.info["run"], marker, copy_options(bt))
            state["moved"] += moved["bytes"]
            state["chunks"].append(marker["chunk"])
            state["next_chunk"] = marker["chunk"] + 1
            self.log.info(
                "chunk %s of %s at the center: %s", marker["chunk"], self.info["run"], moved
            )
        state["seconds"] += time.monotonic() - started
        state["stream_id"] = event["stream_id"]
        if event["concluded"]:
            report = finish_run(
                source,
                dest,
                self.info["run"],
                event["concluded"],
                state["seconds"],
                state["moved"],
                copy_options(bt),
            ).to_dict()
            record_live_end(bt, self.info, report, event["concluded"]["concluded_at"])
            return report | {"chunks": state["chunks"], "stalled": False}
        if event["stalled"]:
            reason = stall_reason(self.info["run"], bt.live_timeout, len(state["chunks"]))
            self.log.warning("%s", reason)
            record_stall(bt, self.info, reason)
            return {"chunks": state["chunks"], "stalled": True, "reason": reason}
        self._wait(bt, state)
