"""``/_emulator`` (admin token only): set system status, schedule outages, inject faults."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel

from ..center_status import Outage
from ..faults import ADMIN_PREFIX, FaultRule
from .deps import Svc, require_admin

router = APIRouter(prefix=ADMIN_PREFIX, dependencies=[Depends(require_admin)])


class StatusUpdate(BaseModel):
    status: str
    notes: list[str] = []


@router.put("/status/{name}")
def set_status(name: str, body: StatusUpdate, svc: Svc):
    try:
        svc.status.set_status(name, body.status, body.notes)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return svc.status.status(name)


def _applied(change: Callable[[], object]) -> dict:
    """``{"status": "OK"}`` once ``change`` is made; HTTP 422 with its reason if it is invalid."""
    try:
        change()
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"status": "OK"}


@router.post("/outages")
def add_outage(body: Outage, svc: Svc):
    return _applied(lambda: svc.status.add_outage(body))


@router.post("/faults")
def add_fault(body: FaultRule, svc: Svc):
    return _applied(lambda: svc.faults.add(body))


@router.delete("/outages")
def clear_outages(svc: Svc):
    return _applied(svc.status.clear_outages)


@router.delete("/faults")
def clear_faults(svc: Svc):
    return _applied(svc.faults.clear)
