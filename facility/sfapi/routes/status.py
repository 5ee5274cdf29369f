"""``/status``, ``/status/outages``, ``/status/notes``: what the center says about its systems."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from ..center_status import CenterStatus
from .deps import Svc

router = APIRouter(prefix="/status")


def _outages(status: CenterStatus, name: str | None, planned: bool):
    if name is None:
        return [status.outages(n, planned) for n in status.names()]
    if not status.known(name):
        raise HTTPException(404, f"Unknown system: {name}")
    return status.outages(name, planned)


@router.get("")
def all_status(svc: Svc):
    return [svc.status.status(n) for n in svc.status.names()]


@router.get("/outages")
def all_outages(svc: Svc):
    return _outages(svc.status, None, planned=False)


@router.get("/outages/planned")
def all_planned_outages(svc: Svc):
    return _outages(svc.status, None, planned=True)


@router.get("/outages/planned/{name}")
def planned_outages(name: str, svc: Svc):
    return _outages(svc.status, name, planned=True)


@router.get("/outages/{name}")
def outages(name: str, svc: Svc):
    return _outages(svc.status, name, planned=False)


@router.get("/notes")
def all_notes(svc: Svc):
    return [[] for _ in svc.status.names()]


@router.get("/notes/{name}")
def notes(name: str):
    return []


@router.get("/{name}")
def system_status(name: str, svc: Svc):
    if not svc.status.known(name):
        raise HTTPException(404, f"Unknown system: {name}")
    return svc.status.status(name)
