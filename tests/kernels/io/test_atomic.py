"""Atomic writes: readers see the old file or the new one, and a failed write leaves no trace."""

from __future__ import annotations

import pytest

from kernels.io.atomic import Durability, atomic_path, write_bytes, write_json


@pytest.mark.parametrize("durability", list(Durability))
def test_write_replaces_whole_and_leaves_no_temporary(tmp_path, durability):
    target = tmp_path / "summary.json"
    target.write_text("old")
    write_json(target, {"status": "complete"}, durability)
    assert target.read_text() == '{\n "status": "complete"\n}'
    write_bytes(target, b"new", durability)
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "images.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer died")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images.csv"]
