"""Two pipelines registering the same names at once on the real MariaDB (repeatable read)."""

from __future__ import annotations

from kernels.resultsdb import ResultsDB


def test_a_name_committed_by_another_pipeline_meanwhile_is_found(mariadb_url):
    """Three runs prepared at once each tag their run with the beamtime's tag: a transaction
    that took its snapshot (reading its run) before another committed the tag must still find
    the tag's id after its own insert of it was a no-op."""
    with ResultsDB(mariadb_url) as first, ResultsDB(mariadb_url) as second:
        run_a = first.ensure_run("e", "r0001")
        run_b = first.ensure_run("e", "r0002")

        def tag_after_the_other_committed(cursor):
            cursor.execute(first._q("SELECT experiment_id FROM runs WHERE id=?"), (run_a,))
            (experiment_id,) = cursor.fetchone()  # this transaction's snapshot is now taken
            second.tag_run(run_b, "lysozyme")  # the other pipeline commits the tag meanwhile
            return first._ensure(
                cursor, "tags", {"experiment_id": experiment_id, "name": "lysozyme"}
            )

        tag_id = first.transaction(tag_after_the_other_committed)
        assert first.run_tags(run_b) == ["lysozyme"]
        (row,) = first._select("SELECT id FROM tags WHERE name=?", ("lysozyme",))
        assert tag_id == row[0]
