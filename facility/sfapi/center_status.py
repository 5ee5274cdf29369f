"""System status and outages of the center, settable by the emulator's admin endpoints.

A system inside an outage window that is not cancelled is reported ``unavailable`` (with the
outage's description as a note), which is what a client checking status before work must see.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .config import MACHINES

STATUS_VALUES = ("active", "unavailable", "degraded", "other")
OUTAGE_STATES = ("Planned", "Active", "Completed", "Cancelled", "Extended")

_DESCRIPTIONS = {
    "perlmutter": ("Perlmutter", "compute", "HPE Cray EX system (emulated)"),
    "dtns": ("Data Transfer Nodes", "filesystem", "Data transfer nodes (emulated)"),
    "dtn01": ("Data Transfer Node 01", "filesystem", "Data transfer node 01 (emulated)"),
}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Outage:
    """A planned or current outage of one system."""

    name: str
    start_at: datetime
    end_at: datetime
    description: str = ""
    notes: str = ""
    status: str = "Planned"
    swo: str = "Full"
    update_at: datetime = field(default_factory=_now)

    def is_current(self, now: datetime) -> bool:
        return self.status != "Cancelled" and self.start_at <= now < self.end_at

    def as_dict(self, now: datetime) -> dict:
        status = self.status
        if status == "Planned" and self.is_current(now):
            status = "Active"
        elif status in ("Planned", "Active") and now >= self.end_at:
            status = "Completed"
        return {
            "name": self.name,
            "start_at": self.start_at.isoformat(),
            "end_at": self.end_at.isoformat(),
            "description": self.description,
            "notes": self.notes,
            "status": status,
            "swo": self.swo,
            "update_at": self.update_at.isoformat(),
        }


class CenterStatus:
    """Status of every system plus the outage calendar."""

    def __init__(self):
        self._status = {m: ("active", [], _now()) for m in MACHINES}
        self._outages: list[Outage] = []
        self._lock = threading.Lock()

    def known(self, name: str) -> bool:
        return name in self._status

    def set_status(self, name: str, status: str, notes: list[str]) -> None:
        """Force ``name``'s status; raises ValueError for an unknown system or status value."""
        if name not in self._status or status not in STATUS_VALUES:
            raise ValueError(
                f"unknown system {name!r} or status {status!r} (one of {STATUS_VALUES})"
            )
        with self._lock:
            self._status[name] = (status, list(notes), _now())

    def add_outage(self, outage: Outage) -> None:
        if outage.name not in self._status or outage.status not in OUTAGE_STATES:
            raise ValueError(f"unknown system {outage.name!r} or outage status {outage.status!r}")
        if outage.end_at <= outage.start_at:
            raise ValueError("outage end_at must be after start_at")
        with self._lock:
            self._outages.append(outage)

    def clear_outages(self) -> None:
        with self._lock:
            self._outages.clear()

    def status(self, name: str) -> dict:
        """``GET /status/{name}`` body."""
        now = _now()
        status, notes, updated = self._status[name]
        current = [o for o in self._outages if o.name == name and o.is_current(now)]
        if current and status == "active":
            status, notes, updated = (
                "unavailable",
                [o.description for o in current],
                current[0].start_at,
            )
        full_name, system_type, description = _DESCRIPTIONS[name]
        return {
            "name": name,
            "full_name": full_name,
            "description": description,
            "system_type": system_type,
            "notes": notes,
            "status": status,
            "updated_at": updated.isoformat(),
        }

    def outages(self, name: str, planned: bool) -> list[dict]:
        """Outages of ``name`` not yet over if ``planned``, else current and past ones.

        A current outage is in both lists (status ``Active``), so a caller checking planned
        outages for "are we inside one now" finds it.
        """
        now = _now()
        chosen = [
            o
            for o in self._outages
            if o.name == name and (o.end_at > now if planned else o.start_at <= now)
        ]
        return [o.as_dict(now) for o in sorted(chosen, key=lambda o: o.start_at)]

    def names(self) -> list[str]:
        return list(self._status)
