"""Views of the results DB for the dashboard."""

from __future__ import annotations

from .connection import Connection


class ViewQueries(Connection):
    """Joined, ready-to-show tables."""

    def run_table(self, experiment: str, trial_id: int) -> list[dict]:
        """One row per run of ``experiment`` for the dashboard, by run name.

        Keys: run_id, run, state (latest job state, else summary status, else "new"),
        images, hits, indexed, integrated, turnaround_s (summary finished − run concluded).
        """
        rows = self._select(
            """SELECT r.id, r.name, r.concluded, s.status, s.finished,
                      (SELECT j.state FROM jobs j WHERE j.run_id=r.id AND j.trial_id=? ORDER BY j.id DESC LIMIT 1),
                      COUNT(i.event), SUM(i.hit), SUM(i.is_indexed),
                      SUM(CASE WHEN i.n_integrated>0 THEN 1 ELSE 0 END)
               FROM runs r JOIN experiments e ON e.id=r.experiment_id
               LEFT JOIN run_summaries s ON s.run_id=r.id AND s.trial_id=?
               LEFT JOIN images i ON i.run_id=r.id AND i.trial_id=?
               WHERE e.name=?
               GROUP BY r.id, r.name, r.concluded, s.status, s.finished
               ORDER BY r.name""",
            (trial_id, trial_id, trial_id, experiment),
        )
        table = []
        for (
            run_id,
            name,
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

    def tags_by_run(self, experiment: str) -> dict[int, list[str]]:
        """run id -> its tags (sorted) for every tagged run of ``experiment``, in one query."""
        rows = self._select(
            """SELECT rt.run_id, t.name FROM run_tags rt JOIN tags t ON t.id=rt.tag_id
               JOIN experiments e ON e.id=t.experiment_id WHERE e.name=? ORDER BY t.name""",
            (experiment,),
        )
        found: dict[int, list[str]] = {}
        for run_id, tag in rows:
            found.setdefault(int(run_id), []).append(tag)
        return found

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
