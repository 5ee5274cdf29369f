"""Views of the results DB for the dashboard."""

from __future__ import annotations

from .connection import Connection

COUNT_KEYS = ("images", "hits", "indexed", "integrated")


class ViewQueries(Connection):
    """Joined, ready-to-show tables."""

    def run_table(self, experiment: str, trial_id: int) -> list[dict]:
        """One row per run of ``experiment`` for the dashboard, by run name.

        Keys: run_id, run, state (latest job state, else summary status, else "new"),
        images, hits, indexed, integrated, turnaround_s (summary finished − run concluded),
        created and concluded (UNIX seconds; concluded None while the DAQ writes the run).

        A run with a summary has its counts frozen there (``record_run_summary``); only the
        image rows of the others are counted, so a beamtime of millions of image rows answers
        in the time of its few running runs.
        """
        rows = self._select(
            """SELECT r.id, r.name, r.created, r.concluded, s.status, s.finished,
                      (SELECT j.state FROM jobs j WHERE j.run_id=r.id AND j.trial_id=? ORDER BY j.id DESC LIMIT 1),
                      s.n_images, s.n_hits, s.n_indexed, s.n_integrated
               FROM runs r JOIN experiments e ON e.id=r.experiment_id
               LEFT JOIN run_summaries s ON s.run_id=r.id AND s.trial_id=?
               WHERE e.name=?
               ORDER BY r.name""",
            (trial_id, trial_id, experiment),
        )
        counted = self._image_counts(trial_id, [row[0] for row in rows if row[7] is None])
        table = []
        for run_id, name, created, concluded, status, finished, job_state, *frozen in rows:
            counts = counted.get(run_id, (0, 0, 0, 0)) if frozen[0] is None else frozen
            turnaround = (
                finished - concluded if finished is not None and concluded is not None else None
            )
            table.append(
                {
                    "run_id": run_id,
                    "run": name,
                    "state": job_state or status or "new",
                    **{key: int(n or 0) for key, n in zip(COUNT_KEYS, counts)},
                    "turnaround_s": turnaround,
                    "created": created,
                    "concluded": concluded,
                }
            )
        return table

    def published_trials(self, run_ids: list[int]) -> list[tuple[str, str]]:
        """(run name, trial name) of every run summary of these runs: what a re-merge needs."""
        if not run_ids:
            return []
        marks = ", ".join("?" * len(run_ids))
        rows = self._select(
            f"""SELECT r.name, t.name FROM run_summaries s
                JOIN runs r ON r.id=s.run_id JOIN trials t ON t.id=s.trial_id
                WHERE s.run_id IN ({marks}) ORDER BY t.name, r.name""",
            [int(i) for i in run_ids],
        )
        return [(run, trial) for run, trial in rows]

    def run_states(self, experiment: str, trial_id: int) -> list[dict]:
        """run_id, run, state of every run of ``experiment`` for a trial, without touching the
        images (the pipeline state, else the summary status, else "new"), by run id."""
        rows = self._select(
            """SELECT r.id, r.name, p.state, s.status FROM runs r
               JOIN experiments e ON e.id=r.experiment_id
               LEFT JOIN pipeline_states p ON p.run_id=r.id AND p.trial_id=?
               LEFT JOIN run_summaries s ON s.run_id=r.id AND s.trial_id=?
               WHERE e.name=? ORDER BY r.id""",
            (trial_id, trial_id, experiment),
        )
        return [
            {"run_id": int(run_id), "run": name, "state": state or status or "new"}
            for run_id, name, state, status in rows
        ]

    def _image_counts(self, trial_id: int, run_ids: list[int]) -> dict[int, tuple]:
        """run id -> (images, hits, indexed, integrated) from the image rows of those runs."""
        counts: dict[int, tuple] = {}
        for start in range(0, len(run_ids), 500):  # bounded statements
            batch = run_ids[start : start + 500]
            for run_id, *values in self._select(
                "SELECT run_id, COUNT(*), SUM(hit), SUM(is_indexed), "
                "SUM(CASE WHEN n_integrated>0 THEN 1 ELSE 0 END) FROM images "
                f"WHERE trial_id=? AND run_id IN ({','.join('?' * len(batch))}) GROUP BY run_id",
                (trial_id, *batch),
            ):
                counts[int(run_id)] = tuple(values)
        return counts

    def run_times(self, run_id: int) -> tuple[float, float | None] | None:
        """(created, concluded) of a run — concluded None while the DAQ still writes it."""
        rows = self._select("SELECT created, concluded FROM runs WHERE id=?", (run_id,))
        return (rows[0][0], rows[0][1]) if rows else None
