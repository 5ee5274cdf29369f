"""Rank 0's bookkeeping: which items are finished, and logging their rows to the results DB."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from kernels.driver.parts import Record
from kernels.driver.so_far import RunSoFar, contribution
from kernels.funnel import COUNTS
from kernels.io.checkpoint import Checkpoint
from kernels.resultsdb.logger import ImageLogger, ImageRow, LoggerFailedError

log = logging.getLogger(__name__)


class Producer:
    """Finished items (in the checkpoint) and the job's DB logger, which may fail and stop."""

    def __init__(self, checkpoint: Checkpoint, logger: ImageLogger | None):
        self.checkpoint = checkpoint
        self.logger = logger
        self.so_far: RunSoFar | None = None  # a live job's run-so-far merge
        # a live job's finished records, kept as they come: its outputs are assembled from
        # them at the run's end instead of reading every part back (None: read the parts)
        self.kept: dict[tuple[int, int], Record] | None = None
        self.log_failed = False  # the DB stayed away too long: keep processing, log on the next run

    def record(self, rows: list[ImageRow], records: Sequence[Record] = ()) -> None:
        """Mark rows' items finished and log the rows (ImageRows, encoded here); ``records``:
        a live job's (row, result) of those items."""
        self.checkpoint.done.update((row.chunk, row.event) for row in rows)
        self.log(rows)
        self._keep(records)

    def record_encoded(self, items, encoded: list, records: Sequence[Record] = ()) -> None:
        """Mark work items finished and log their rows, encoded by the workers."""
        self.checkpoint.done.update(map(tuple, items))
        self._log(lambda logger: logger.add_encoded(encoded), encoded)
        self._keep(records)

    def _keep(self, records: Sequence[Record]) -> None:
        """A live job's finished records: kept for the outputs, and their integrated images
        added to the run-so-far merge (published when due)."""
        if self.kept is not None:
            self.kept.update(((row.chunk, row.event), (row, result)) for row, result in records)
        if self.so_far is not None:
            self.so_far.add(c for _, result in records if (c := contribution(result)) is not None)
            self.so_far.tick()

    def log(self, rows: list[ImageRow]) -> None:
        """Queue ImageRows for the DB."""
        self._log(lambda logger: logger.add_many(rows), rows)

    def _log(self, add: Callable[[ImageLogger], None], rows: list) -> None:
        if self.logger is not None and rows and not self.log_failed:
            try:
                add(self.logger)
            except LoggerFailedError as exc:
                self.report(exc)

    def flush_log(self) -> bool:
        """Commit every row logged so far; False if the DB could not take them."""
        if self.logger is not None and not self.log_failed:
            try:
                self.logger.flush()
            except LoggerFailedError as exc:
                self.report(exc)
        return not self.log_failed

    def report(self, exc: LoggerFailedError) -> None:
        """Stop logging for this session; the rows stay in the parts for the next run."""
        self.log_failed = True
        log.error(
            "%s; processing goes on, results are kept and the same command logs them later", exc
        )

    def close_log(self, summary: dict) -> None:
        """Record the run summary and close the DB connection."""
        logger = self.logger
        if logger is None:
            return
        if self.log_failed:
            logger.db.close()
            return
        funnel = {k: summary[k] for k in COUNTS if k in summary}
        funnel.setdefault("images", len(self.checkpoint.done))
        try:
            logger.db.record_run_summary(
                logger.run_id,
                logger.trial_id,
                summary["status"],
                funnel,
                summary.get("timings", {}),
            )
        except Exception as exc:  # the rows are what matters; the summary is rewritten next time
            log.warning("run summary not recorded in the results DB: %s", exc)
        logger.close()
