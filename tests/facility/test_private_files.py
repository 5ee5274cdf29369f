"""Secret files are readable by their owner only, also when they replace an older file."""

from __future__ import annotations

import stat

from facility.private_files import write_private


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_and_replaced_secret_files_are_0600(tmp_path):
    fresh = write_private(tmp_path / "token", b"t0k")
    assert mode(fresh) == 0o600 and fresh.read_bytes() == b"t0k"
    old = tmp_path / "server.key"
    old.write_text("an old key")
    old.chmod(0o644)  # e.g. left world-readable by hand
    write_private(old, "a new key")
    assert mode(old) == 0o600 and old.read_text() == "a new key"
