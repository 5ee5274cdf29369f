"""Per-image rows of the results DB: bulk idempotent inserts, live counts, the weather."""

from __future__ import annotations

import json

from kernels.io.weather import stage_segments

from .connection import Connection

CELL_COLUMNS = ("cell_a", "cell_b", "cell_c", "cell_alpha", "cell_beta", "cell_gamma")
IMAGE_COLUMNS = (
    "run_id",
    "trial_id",
    "chunk",
    "event",
    "hit",
    "n_spots",
    "is_indexed",
    "n_refined",
    "n_integrated",
    "status",
    "reason",
    "mpi_rank",
    "host",
    "t_start",
    "timings",
    "t_acquired",
    "n_saturated",
    "d_est",
    *CELL_COLUMNS,
)
# per IMAGE_COLUMNS: i integer, f float, s string, j identifier-keyed JSON
IMAGE_KINDS = "iiiiiiiiissisfj" + "fif" + "f" * len(CELL_COLUMNS)


class ImageQueries(Connection):
    """The ``images`` table: one row per processed image of a run and trial."""

    def insert_images(self, encoded_rows: list) -> None:
        """Insert rows already encoded by ``dialect.encode_row`` in one idempotent transaction."""
        self.transaction(
            lambda cursor: self.dialect.bulk_insert_ignore(
                cursor, "images", IMAGE_COLUMNS, encoded_rows
            )
        )

    def image_counts(self, run_id: int, trial_id: int) -> dict:
        """Live progress of a run: totals of the funnel and images per status."""
        rows = self._select(
            "SELECT status, COUNT(*), SUM(hit), SUM(is_indexed), SUM(CASE WHEN n_integrated>0 THEN 1 ELSE 0 END) "
            "FROM images WHERE run_id=? AND trial_id=? GROUP BY status",
            (run_id, trial_id),
        )
        totals = {"images": 0, "hits": 0, "indexed": 0, "integrated": 0}
        by_status: dict[str, int] = {}
        for status, n, hits, indexed, integrated in rows:
            by_status[status] = int(n)
            totals["images"] += int(n)
            totals["hits"] += int(hits)
            totals["indexed"] += int(indexed)
            totals["integrated"] += int(integrated)
        return {**totals, "by_status": by_status}

    def images(self, run_id: int, trial_id: int) -> list[dict]:
        """All image rows of a run and trial, in (chunk, event) order."""
        columns = IMAGE_COLUMNS[2:]
        rows = self._select(
            f"SELECT {','.join(columns)} FROM images WHERE run_id=? AND trial_id=? "
            "ORDER BY chunk, event",
            (run_id, trial_id),
        )
        return [dict(zip(columns, row)) for row in rows]

    def weather(self, run_id: int, trial_id: int) -> list[tuple[int, float, float, str]]:
        """(rank, start, end, stage) of every stage of every image, stages back to back."""
        rows = self._select(
            "SELECT mpi_rank, t_start, timings FROM images WHERE run_id=? AND trial_id=? "
            "ORDER BY mpi_rank, t_start",
            (run_id, trial_id),
        )
        return [
            seg
            for rank, start, timings in rows
            for seg in stage_segments(rank, start, json.loads(timings))
        ]

    def image_series(
        self,
        run_id: int,
        trial_id: int,
        columns: tuple[str, ...],
        every: int = 1,
        refined_only: bool = False,
    ) -> list[tuple]:
        """Chosen ``IMAGE_COLUMNS`` of the images of a run and trial in acquisition order
        (chunk, event): the run view's series, without the weather's timings text.

        ``every``: only every k-th event of each chunk (a thinned plot); ``refined_only``: only
        images with a refined cell. Both filter in the server, so fewer values cross the wire.
        """
        unknown = set(columns) - set(IMAGE_COLUMNS)
        if unknown:
            raise ValueError(f"not image columns: {sorted(unknown)}")
        thin = f" AND event % {int(every)} = 0" if every > 1 else ""
        refined = " AND cell_a>0" if refined_only else ""
        return self._select(
            f"SELECT {','.join(columns)} FROM images WHERE run_id=? AND trial_id=?{thin}{refined} "
            "ORDER BY chunk, event",
            (run_id, trial_id),
        )

    def image_buckets(self, run_id: int, trial_id: int, size: int) -> list[tuple]:
        """(images, hits, indexed, first t_acquired) of each run of ``size`` consecutive events
        of a chunk, in acquisition order: rolling rates from a few hundred rows, not every image."""
        size = max(1, int(size))
        return self._select(
            f"SELECT COUNT(*), SUM(hit), SUM(is_indexed), MIN(t_acquired) FROM images "
            f"WHERE run_id=? AND trial_id=? GROUP BY chunk, (event - event % {size}) "
            f"ORDER BY chunk, (event - event % {size})",
            (run_id, trial_id),
        )

    def reason_counts(self, run_id: int, trial_id: int) -> list[tuple[str, str, int, float]]:
        """(status, reason, images, newest t_start) of a run and trial: why its images
        stopped, counted, and when the last of them was processed."""
        rows = self._select(
            "SELECT status, reason, COUNT(*), MAX(t_start) FROM images "
            "WHERE run_id=? AND trial_id=? GROUP BY status, reason",
            (run_id, trial_id),
        )
        return [(str(s), str(r), int(n), float(t)) for s, r, n, t in rows]
