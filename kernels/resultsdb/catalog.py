"""The catalogue of the results DB: experiments, runs, trials, tags and datasets."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable

from .connection import Connection, canonical_json


class TrialParamsChangedError(ValueError):
    """A trial version already exists with other parameters (trials are immutable)."""


class UnknownNameError(LookupError):
    """An experiment, run, trial or dataset name that is not in the DB."""


class CatalogQueries(Connection):
    """Names and their ids: what was measured (experiments, runs, tags, datasets) and how it
    is processed (trials)."""

    def ensure_experiment(self, name: str) -> int:
        """Id of the experiment called ``name`` (created if new)."""
        return self.transaction(
            lambda c: self._ensure(c, "experiments", {"name": name}, {"created": time.time()})
        )

    def ensure_run(self, experiment: str, run: str, concluded: float | None = None) -> int:
        """Id of run ``run`` of ``experiment`` (both created if new).

        ``concluded`` (UNIX time the DAQ closed the run) is stored once and is the start of
        the turnaround shown on the dashboard.
        """

        def work(cursor):
            experiment_id = self._ensure(
                cursor, "experiments", {"name": experiment}, {"created": time.time()}
            )
            run_id = self._ensure(
                cursor,
                "runs",
                {"experiment_id": experiment_id, "name": run},
                {"created": time.time(), "concluded": concluded},
            )
            if concluded is not None:
                cursor.execute(
                    self._q("UPDATE runs SET concluded=? WHERE id=? AND concluded IS NULL"),
                    (concluded, run_id),
                )
            return run_id

        return self.transaction(work)

    def ensure_trial(self, name: str, params: dict, version: int = 1) -> int:
        """Id of trial ``name`` version ``version`` with parameters ``params``.

        Raises
        ------
        TrialParamsChangedError
            That version exists with different parameters; trials are immutable, so
            reprocessing with new parameters needs a new version.
        """
        text = canonical_json(params)
        digest = hashlib.sha256(text.encode()).hexdigest()

        def work(cursor):
            trial_id = self._ensure(
                cursor,
                "trials",
                {"name": name, "version": version},
                {"params": text, "params_sha256": digest, "created": time.time()},
            )
            cursor.execute(self._q("SELECT params_sha256 FROM trials WHERE id=?"), (trial_id,))
            if cursor.fetchone()[0] != digest:
                cursor.execute(self._q("SELECT MAX(version) FROM trials WHERE name=?"), (name,))
                newest = cursor.fetchone()[0]
                raise TrialParamsChangedError(
                    f"trial {name!r} version {version} already exists with different parameters; "
                    f"trials are immutable, use version {newest + 1}"
                )
            return trial_id

        return self.transaction(work)

    def get_trial(self, name: str, version: int | None = None) -> dict:
        """Trial ``name`` at ``version`` (default: the newest) as id/name/version/params."""
        query = "SELECT id, version, params FROM trials WHERE name=?"
        params: tuple = (name,)
        if version is not None:
            query, params = query + " AND version=?", (name, version)
        rows = self._select(query + " ORDER BY version DESC LIMIT 1", params)
        if not rows:
            raise UnknownNameError(
                f"no trial {name!r}" + (f" version {version}" if version else "")
            )
        trial_id, found_version, text = rows[0]
        return {"id": trial_id, "name": name, "version": found_version, "params": json.loads(text)}

    def experiments(self) -> list[str]:
        """Names of all experiments, newest first."""
        return [
            name
            for (name,) in self._select("SELECT name FROM experiments ORDER BY created DESC, name")
        ]

    def trials(self) -> list[dict]:
        """All trials as id/name/version, newest first."""
        rows = self._select("SELECT id, name, version FROM trials ORDER BY created DESC, id DESC")
        return [{"id": int(i), "name": name, "version": int(version)} for i, name, version in rows]

    def run_name(self, run_id: int) -> tuple[str, str] | None:
        """(experiment name, run name) of a run id, or None."""
        rows = self._select(
            "SELECT e.name, r.name FROM runs r JOIN experiments e ON e.id=r.experiment_id "
            "WHERE r.id=?",
            (run_id,),
        )
        return rows[0] if rows else None

    def tag_run(self, run_id: int, tag: str) -> None:
        """Attach ``tag`` to a run (tags belong to the run's experiment)."""

        def work(cursor):
            cursor.execute(self._q("SELECT experiment_id FROM runs WHERE id=?"), (run_id,))
            row = cursor.fetchone()
            if row is None:
                raise UnknownNameError(f"no run with id {run_id}")
            tag_id = self._ensure(cursor, "tags", {"experiment_id": row[0], "name": tag})
            cursor.execute(
                self.dialect.insert_ignore("run_tags", ("run_id", "tag_id")), (run_id, tag_id)
            )

        self.transaction(work)

    def untag_run(self, run_id: int, tag: str) -> bool:
        """Take ``tag`` off a run; False when the run did not carry it."""

        def work(cursor):
            cursor.execute(
                self._q(
                    "DELETE FROM run_tags WHERE run_id=? AND tag_id IN (SELECT t.id FROM tags t "
                    "JOIN runs r ON r.experiment_id=t.experiment_id WHERE r.id=? AND t.name=?)"
                ),
                (run_id, run_id, tag),
            )
            return cursor.rowcount > 0

        return self.transaction(work)

    def run_tags(self, run_id: int) -> list[str]:
        """The tags of a run, sorted."""
        rows = self._select(
            "SELECT t.name FROM tags t JOIN run_tags rt ON rt.tag_id=t.id WHERE rt.run_id=? ORDER BY t.name",
            (run_id,),
        )
        return [name for (name,) in rows]

    def experiment_run_tags(self, experiment: str) -> dict[int, list[str]]:
        """run id -> its tags (by name), for every tagged run of an experiment (one query)."""
        rows = self._select(
            """SELECT rt.run_id, t.name FROM run_tags rt JOIN tags t ON t.id=rt.tag_id
               JOIN experiments e ON e.id=t.experiment_id WHERE e.name=? ORDER BY t.name""",
            (experiment,),
        )
        tags: dict[int, list[str]] = {}
        for run_id, tag in rows:
            tags.setdefault(int(run_id), []).append(tag)
        return tags

    def ensure_dataset(self, experiment: str, name: str, tags: Iterable[str]) -> int:
        """Id of dataset ``name``: the runs of ``experiment`` that carry every tag in ``tags``."""
        tags = sorted(set(tags))
        if not tags:
            raise ValueError(f"dataset {name!r} needs at least one tag")

        def work(cursor):
            experiment_id = self._ensure(
                cursor, "experiments", {"name": experiment}, {"created": time.time()}
            )
            dataset_id = self._ensure(
                cursor, "datasets", {"experiment_id": experiment_id, "name": name}
            )
            for tag in tags:
                tag_id = self._ensure(cursor, "tags", {"experiment_id": experiment_id, "name": tag})
                cursor.execute(
                    self.dialect.insert_ignore("dataset_tags", ("dataset_id", "tag_id")),
                    (dataset_id, tag_id),
                )
            return dataset_id

        return self.transaction(work)

    def datasets(self, experiment: str) -> list[dict]:
        """Datasets of an experiment as id/name/tags, by name."""
        rows = self._select(
            """SELECT d.id, d.name, t.name FROM datasets d
               JOIN experiments e ON e.id=d.experiment_id
               LEFT JOIN dataset_tags dt ON dt.dataset_id=d.id
               LEFT JOIN tags t ON t.id=dt.tag_id
               WHERE e.name=? ORDER BY d.name, t.name""",
            (experiment,),
        )
        found: dict[int, dict] = {}
        for dataset_id, name, tag in rows:
            entry = found.setdefault(
                int(dataset_id), {"id": int(dataset_id), "name": name, "tags": []}
            )
            if tag is not None:
                entry["tags"].append(tag)
        return list(found.values())

    def _dataset_id(self, cursor, experiment: str, dataset: str) -> int:
        """The id of ``experiment``'s dataset ``dataset`` (UnknownNameError naming both)."""
        cursor.execute(
            self._q(
                "SELECT d.id FROM datasets d JOIN experiments e ON e.id=d.experiment_id "
                "WHERE e.name=? AND d.name=?"
            ),
            (experiment, dataset),
        )
        row = cursor.fetchone()
        if row is None:
            raise UnknownNameError(f"no dataset {dataset!r} in experiment {experiment!r}")
        return int(row[0])

    def dataset_runs(self, experiment: str, dataset: str) -> list[tuple[int, str]]:
        """(run_id, run name) of every run carrying all tags of the dataset, by name."""

        def work(cursor):
            dataset_id = self._dataset_id(cursor, experiment, dataset)
            cursor.execute(
                self._q(
                    """SELECT r.id, r.name FROM runs r
                   JOIN run_tags rt ON rt.run_id=r.id
                   JOIN dataset_tags dt ON dt.tag_id=rt.tag_id
                   WHERE dt.dataset_id=?
                   GROUP BY r.id, r.name
                   HAVING COUNT(*)=(SELECT COUNT(*) FROM dataset_tags WHERE dataset_id=?)
                   ORDER BY r.name"""
                ),
                (dataset_id, dataset_id),
            )
            return [(int(run_id), name) for run_id, name in cursor.fetchall()]

        return self.transaction(work, write=False)

    def delete_dataset(self, experiment: str, dataset: str) -> int:
        """Forget dataset ``dataset`` of ``experiment`` with its merged statistics (its runs and
        their tags stay); return its id.

        Raises
        ------
        UnknownNameError
            The experiment has no such dataset.
        """

        def work(cursor):
            dataset_id = self._dataset_id(cursor, experiment, dataset)
            for statement in (
                "DELETE FROM merge_stats WHERE scope='dataset' AND scope_id=?",
                "DELETE FROM split_stats WHERE dataset_id=?",
                "DELETE FROM dataset_tags WHERE dataset_id=?",
                "DELETE FROM datasets WHERE id=?",
            ):
                cursor.execute(self._q(statement), (dataset_id,))
            return dataset_id

        return self.transaction(work)
