"""The audit log and the dashboard's action queries of the results DB, on SQLite and MariaDB."""

from __future__ import annotations

import time

import pytest

from kernels.resultsdb import ResultsDB, UnknownNameError

HOSTILE = "<b>o'neil\"</b>"


def test_actions_are_kept_newest_first_per_experiment(db_url):
    with ResultsDB(db_url) as db:
        before = time.time()
        first = db.record_action(HOSTILE, "cxi1", "tag", {"tag": "a", "runs": ["r0001"]}, "ok")
        second = db.record_action("op", "cxi1", "reprocess", {"runs": "1-2"}, "x" * 2000)
        db.record_action("op", "cxi2", "tag", {}, "elsewhere")
        rows = db.actions("cxi1")
        assert [r["id"] for r in rows] == [second, first]
        assert rows[1]["username"] == HOSTILE  # stored verbatim, escaped only when shown
        assert rows[1]["detail"] == {"tag": "a", "runs": ["r0001"]}
        assert len(rows[0]["outcome"]) == 1024  # bounded, never an error
        assert all(before <= r["at"] <= time.time() for r in rows)
        assert [r["id"] for r in db.actions("cxi1", limit=1)] == [second]


def test_published_trials_are_the_run_summaries(db_url):
    with ResultsDB(db_url) as db:
        t1, t2 = db.ensure_trial("t1", {}), db.ensure_trial("t2", {"x": 1})
        r1, r2 = db.ensure_run("cxi1", "r0001"), db.ensure_run("cxi1", "r0002")
        db.record_run_summary(r1, t1, "complete", {}, {}, finished=1.0)
        db.record_run_summary(r1, t2, "complete", {}, {}, finished=2.0)
        assert db.published_trials([r1, r2]) == [("r0001", "t1"), ("r0001", "t2")]
        assert db.published_trials([r2]) == [] and db.published_trials([]) == []


def test_tags_by_run_are_one_experiments_tags(db_url):
    with ResultsDB(db_url) as db:
        r1, r2 = db.ensure_run("cxi1", "r0001"), db.ensure_run("cxi1", "r0002")
        other = db.ensure_run("cxi2", "r0001")
        for run_id, tag in ((r1, "b"), (r1, HOSTILE), (r2, "b"), (other, "c")):
            db.tag_run(run_id, tag)
        assert db.experiment_run_tags("cxi1") == {r1: sorted(["b", HOSTILE]), r2: ["b"]}
        assert db.experiment_run_tags("cxi1")[r1] == db.run_tags(r1)


def test_run_states_say_where_each_run_stands_for_a_trial(db_url):
    with ResultsDB(db_url) as db:
        t1, t2 = db.ensure_trial("t1", {}), db.ensure_trial("t2", {"x": 1})
        r1, r2, r3 = (db.ensure_run("cxi1", f"r000{n}") for n in (1, 2, 3))
        db.ensure_run("cxi2", "r0001")
        db.record_pipeline_state(r1, t1, "processing")
        db.record_run_summary(r2, t1, "complete", {}, {}, finished=1.0)
        db.record_pipeline_state(r3, t2, "failed")
        assert db.run_states("cxi1", t1) == [
            {"run_id": r1, "run": "r0001", "state": "processing"},
            {"run_id": r2, "run": "r0002", "state": "complete"},
            {"run_id": r3, "run": "r0003", "state": "new"},  # failed for another trial only
        ]


def test_a_tag_comes_off_one_run_only(db_url):
    with ResultsDB(db_url) as db:
        r1, r2 = db.ensure_run("cxi1", "r0001"), db.ensure_run("cxi1", "r0002")
        other = db.ensure_run("cxi2", "r0001")
        for run_id in (r1, r2, other):
            db.tag_run(run_id, HOSTILE)
        assert db.untag_run(r1, HOSTILE) is True
        assert db.untag_run(r1, HOSTILE) is False and db.untag_run(r1, "never") is False
        assert db.experiment_run_tags("cxi1") == {r2: [HOSTILE]}
        assert db.run_tags(other) == [HOSTILE]  # the same tag name of another experiment


def test_a_deleted_dataset_takes_its_merges_and_splits_and_leaves_its_runs(db_url):
    with ResultsDB(db_url) as db:
        trial = db.ensure_trial("t1", {})
        run_id = db.ensure_run("cxi1", "r0001")
        db.tag_run(run_id, "a")
        gone, kept = (
            db.ensure_dataset("cxi1", HOSTILE, ["a"]),
            db.ensure_dataset("cxi1", "k", ["a"]),
        )
        split = {"reference": "0", "images_in_no_set": 0, "sets": {}, "differences": {}}
        for dataset_id in (gone, kept):
            db.record_merge_stats(trial, {"cc_half": 0.5}, [], dataset_id=dataset_id)
            db.record_split_stats(trial, dataset_id, {"laser_on": split})
        db.record_merge_stats(trial, {"cc_half": 0.4}, [], run_id=gone)  # a run with that id
        assert db.delete_dataset("cxi1", HOSTILE) == gone
        assert [d["name"] for d in db.datasets("cxi1")] == ["k"]
        assert db.merge_stats(trial, dataset_id=gone) is None
        assert db.merge_stats(trial, dataset_id=kept) is not None
        assert db.split_stats(trial, gone) == {} and list(db.split_stats(trial, kept)) == [
            "laser_on"
        ]
        assert db.merge_stats(trial, run_id=gone) is not None
        assert db.run_tags(run_id) == ["a"]
        with pytest.raises(UnknownNameError, match="no dataset"):
            db.delete_dataset("cxi1", HOSTILE)
