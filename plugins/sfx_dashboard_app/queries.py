"""Read-only look-ups the dashboard needs beyond :class:`kernels.resultsdb.ResultsDB`'s own.

They use only the DB's public transaction API. Candidates to move into ``ResultsDB``.
"""
from __future__ import annotations

from kernels.resultsdb import ResultsDB


def _select(db: ResultsDB, query: str, params: tuple = ()) -> list[tuple]:
    def work(cursor):
        cursor.execute(db.dialect.sql(query), params)
        return [tuple(row) for row in cursor.fetchall()]
    return db.transaction(work)


def experiments(db: ResultsDB) -> list[str]:
    """Names of all experiments, newest first."""
    return [name for (name,) in _select(db, "SELECT name FROM experiments ORDER BY created DESC, name")]


def trials(db: ResultsDB) -> list[dict]:
    """All trials (id, name, version), newest first."""
    rows = _select(db, "SELECT id, name, version FROM trials ORDER BY created DESC, id DESC")
    return [{"id": int(i), "name": name, "version": int(version)} for i, name, version in rows]


def datasets(db: ResultsDB, experiment: str) -> list[dict]:
    """Datasets (id, name, tags) of an experiment, by name."""
    rows = _select(db, """SELECT d.id, d.name, t.name FROM datasets d
                          JOIN experiments e ON e.id=d.experiment_id
                          LEFT JOIN dataset_tags dt ON dt.dataset_id=d.id
                          LEFT JOIN tags t ON t.id=dt.tag_id
                          WHERE e.name=? ORDER BY d.name, t.name""", (experiment,))
    found: dict[int, dict] = {}
    for dataset_id, name, tag in rows:
        entry = found.setdefault(int(dataset_id), {"id": int(dataset_id), "name": name, "tags": []})
        if tag is not None:
            entry["tags"].append(tag)
    return list(found.values())


def run_name(db: ResultsDB, run_id: int) -> tuple[str, str] | None:
    """(experiment name, run name) of a run id, or None."""
    rows = _select(db, "SELECT e.name, r.name FROM runs r JOIN experiments e ON e.id=r.experiment_id "
                       "WHERE r.id=?", (run_id,))
    return rows[0] if rows else None
