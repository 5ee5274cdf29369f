"""Views of the results DB for the dashboard."""

from __future__ import annotations

from .connection import Connection


class ViewQueries(Connection):
    """Joined, ready-to-show tables."""

    def run_table(self, experiment: str, trial_id: int) -> list[dict]:
        """One row per run of ``experiment`` for the dashboard, by run name.

        Keys: run_id, run, state (latest job state, else summary status, else "new"),
        images, hits, indexed, integrated, turnaround_s (summary finished − run concluded),
        created and concluded (UNIX seconds; concluded None while the DAQ writes the run).
        """
        rows = self._select(
            """SELECT r.id, r.name, r.created, r.concluded, s.status, s.finished,
                      (SELECT j.state FROM jobs j WHERE j.run_id=r.id AND j.trial_id=? ORDER BY j.id DESC LIMIT 1),
                      COUNT(i.event), SUM(i.hit), SUM(i.is_indexed),
                      SUM(CASE WHEN i.n_integrated>0 THEN 1 ELSE 0 END)
               FROM runs r JOIN experiments e ON e.id=r.experiment_id
               LEFT JOIN run_summaries s ON s.run_id=r.id AND s.trial_id=?
               LEFT JOIN images i ON i.run_id=r.id AND i.trial_id=?
               WHERE e.name=?
               GROUP BY r.id, r.name, r.created, r.concluded, s.status, s.finished
               ORDER BY r.name""",
            (trial_id, trial_id, trial_id, experiment),
        )
        table = []
        for (
            run_id,
            name,
            created,
            concluded,
            status,
            finished,
            job_state,
            n,
            hits,
            indexed,
            integrated,
        ) in rows:
            turnaround = (
                finished - concluded if finished is not None and concluded is not None else None
            )
            table.append(
                {
                    "run_id": run_id,
                    "run": name,
                    "state": job_state or status or "new",
                    "images": int(n),
                    "hits": int(hits or 0),
                    "indexed": int(indexed or 0),
                    "integrated": int(integrated or 0),
                    "turnaround_s": turnaround,
                    "created": created,
                    "concluded": concluded,
                }
            )
        return table

    def run_times(self, run_id: int) -> tuple[float, float | None] | None:
        """(created, concluded) of a run — concluded None while the DAQ still writes it."""
        rows = self._select("SELECT created, concluded FROM runs WHERE id=?", (run_id,))
        return (rows[0][0], rows[0][1]) if rows else None
