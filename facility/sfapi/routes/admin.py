"""``/_emulator`` (admin token only): set system status, schedule outages, inject faults."""

from __future__ import annotations

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


@router.post("/outages")
def add_outage(body: Outage, svc: Svc):
    try:
        svc.status.add_outage(body)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"status": "OK"}


@router.delete("/outages")
def clear_outages(svc: Svc):
    svc.status.clear_outages()
    return {"status": "OK"}


@router.post("/faults")
def add_fault(body: FaultRule, svc: Svc):
    try:
        svc.faults.add(body)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"status": "OK"}


@router.delete("/faults")
def clear_faults(svc: Svc):
    svc.faults.clear()
    return {"status": "OK"}
