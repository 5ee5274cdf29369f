"""``/account``: who the token belongs to, and their projects."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from .deps import User

router = APIRouter(prefix="/account")


@router.get("")
def whoami(user: User, username: str | None = None):
    if username not in (None, user.user):
        raise HTTPException(403, "Can only fetch the authenticated user")
    return {
        "uid": user.uid,
        "name": user.user,
        "firstname": user.user,
        "lastname": "",
        "middlename": None,
        "workphone": None,
        "otherPhones": None,
        "email": f"{user.user}@sfxflow.invalid",
    }


@router.get("/projects")
def projects(user: User):
    return [
        {
            "id": 1,
            "description": "sfxflow emulated project",
            "repo_name": "m0000",
            "iris_role": "user",
            "hours_given": 1e6,
            "hours_used": 0.0,
        }
    ]
