"""``POST /oauth2/token``: the client-credentials grant with a ``private_key_jwt`` assertion."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..auth import OAuthError
from .deps import TOKEN_PATH, Svc

router = APIRouter()


@router.post(TOKEN_PATH)
async def token(request: Request, svc: Svc):
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        return svc.tokens.issue(form)
    except OAuthError as exc:
        return JSONResponse(
            {"error": exc.code, "error_description": exc.description},
            status_code=401 if exc.code == "invalid_client" else 400,
        )
