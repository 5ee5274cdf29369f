"""The MPI protocol: rank 0 hands out small batches of work on demand; workers ask for more
with the items they finished (and those items' DB rows, already encoded) piggybacked."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import replace

from kernels.driver.producer import Producer
from kernels.driver.signals import StopFlag
from kernels.driver.worker import Worker
from kernels.resultsdb.logger import ImageRowEncoder

# worker -> producer: (items finished since the last request, their rows, stopping, a live
# job's (row, result) of those items, for its run-so-far merge and its outputs)
TAG_REQUEST = 11
TAG_WORK = 12  # producer -> worker: list of work items; empty list = no more work


def produce(comm, feed, producer: Producer, stop: StopFlag, batch: int) -> None:
    """Hand out the feed's unfinished items on demand until it has ended and they are all
    handed out, or a stop is requested.

    A worker asking while the queue is empty but the feed goes on (a live run between
    chunks) waits for the next chunk: its request is answered once there is work.
    """
    from mpi4py import MPI

    workers = comm.Get_size() - 1
    active = workers
    waiting: deque[int] = deque()
    queue: deque[tuple[int, int]] = deque()
    status = MPI.Status()
    while active:
        queue.extend(item for item in feed.poll() if item not in producer.checkpoint.done)
        while waiting and (queue or stop or feed.ended):
            active -= _answer(comm, waiting.popleft(), queue, stop, batch, workers)
        if not comm.Iprobe(source=MPI.ANY_SOURCE, tag=TAG_REQUEST, status=status):
            time.sleep(0.0005)  # polling keeps signals deliverable to Python
            continue
        source = status.Get_source()
        items, encoded, stopping, records = comm.recv(source=source, tag=TAG_REQUEST)
        producer.record_encoded(items, encoded, records)
        if stopping:
            stop.set(f"rank {source} stopping")
        if queue or stop or feed.ended:
            active -= _answer(comm, source, queue, stop, batch, workers)
        else:
            waiting.append(source)


def _answer(comm, source: int, queue: deque, stop: StopFlag, batch: int, workers: int) -> int:
    """Send ``source`` its next batch, or the empty list that ends it (then return 1)."""
    if stop or not queue:
        comm.send([], dest=source, tag=TAG_WORK)
        return 1
    share = max(1, min(batch, len(queue) // workers))  # small batches at the end
    comm.send([queue.popleft() for _ in range(min(share, len(queue)))], dest=source, tag=TAG_WORK)
    return 0


def consume(
    comm, worker: Worker, encode: ImageRowEncoder | None, stop: StopFlag, live: bool = False
) -> None:
    """Ask for work, process it, report finished items with the next request; stop when told
    or signalled.

    Rows go to rank 0 already encoded for the DB, so the logger only concatenates them; with
    ``live`` the (row, result) records go along (as cached: no spots), for the run-so-far merge
    and so that rank 0 assembles the outputs at the run's end without reading the parts back.
    """
    done: list = []
    encoded: list = []
    records: list = []
    while True:
        comm.send((done, encoded, bool(stop), records), dest=0, tag=TAG_REQUEST)
        items = comm.recv(source=0, tag=TAG_WORK)
        if not items:
            return
        done, encoded, records = [], [], []
        for item in items:
            if stop:
                break
            row, result = worker.process(item)
            done.append(item)
            if encode is not None:
                encoded.append(encode(row))
            if live:
                records.append((row, replace(result, spots=None)))
        worker.cache.sync()  # results are durable before they are reported finished
