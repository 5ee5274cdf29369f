"""Split statistics of the results DB: what each per-event split of a dataset merge gave."""

from __future__ import annotations

import json
import time

from .connection import Connection, canonical_json

SPLIT_KEYS = ("reference", "images_in_no_set", "sets", "differences")


class SplitQueries(Connection):
    """Per dataset and trial, each split's sets (images, CC½, completeness) and differences
    (Riso, CCiso overall and per shell) against its reference set."""

    def record_split_stats(self, trial_id: int, dataset_id: int, splits: dict[str, dict]) -> None:
        """Store the splits of one dataset merge, replacing what an earlier merge of the dataset
        and trial stored (a split the dataset no longer names is gone), in one transaction.

        Parameters
        ----------
        splits : dict
            split tag (``laser_on``, ``delay_ns``) -> ``reference`` (label), ``images_in_no_set``,
            ``sets`` ({label: {"images", ...}}) and ``differences`` ({label: {"riso", "cc_iso",
            "shells"}}).
        """
        for split, stats in splits.items():
            missing = [key for key in SPLIT_KEYS if key not in stats]
            if missing:
                raise ValueError(f"split {split!r} statistics lack {missing}; give {SPLIT_KEYS}")
        columns = ("trial_id", "dataset_id", "split", *SPLIT_KEYS, "updated")
        rows = [
            (
                trial_id,
                dataset_id,
                split,
                str(stats["reference"]),
                int(stats["images_in_no_set"]),
                canonical_json(stats["sets"]),
                canonical_json(stats["differences"]),
                time.time(),
            )
            for split, stats in splits.items()
        ]

        def work(cursor):
            cursor.execute(
                self._q("DELETE FROM split_stats WHERE trial_id=? AND dataset_id=?"),
                (trial_id, dataset_id),
            )
            for row in rows:
                cursor.execute(self.dialect.insert_ignore("split_stats", columns), row)

        self.transaction(work)

    def split_stats(self, trial_id: int, dataset_id: int) -> dict[str, dict]:
        """split tag -> its stored statistics (as recorded, with ``updated``), by tag."""
        rows = self._select(
            "SELECT split, reference, images_in_no_set, sets, differences, updated "
            "FROM split_stats WHERE trial_id=? AND dataset_id=? ORDER BY split",
            (trial_id, dataset_id),
        )
        return {
            split: {
                "reference": reference,
                "images_in_no_set": int(no_set),
                "sets": json.loads(sets),
                "differences": json.loads(differences),
                "updated": updated,
            }
            for split, reference, no_set, sets, differences, updated in rows
        }
