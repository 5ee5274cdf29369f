"""ASGI middleware of the emulator: path normalisation and request bodies bounded as they stream."""

from __future__ import annotations

import json
import re

#: Room for the multipart framing around an upload of the largest allowed size.
FRAMING_BYTES = 64 * 1024


class PathNormalizer:
    """Collapse ``//`` and drop a trailing ``/`` so ``/account/`` and ``//status`` route directly."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = re.sub("/{2,}", "/", scope["path"])
            scope = dict(scope, path=path.rstrip("/") if len(path) > 1 else path)
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse (HTTP 413) a request body over ``limit`` bytes while it streams in.

    The body is read here, counted chunk by chunk, before the app sees any of it, so a chunked
    upload without Content-Length is cut off at the limit rather than read in full first.
    """

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit + FRAMING_BYTES

    async def _refuse(self, send) -> None:
        body = json.dumps(
            {
                "status": "ERROR",
                "error": f"File too large: the limit is {self.limit - FRAMING_BYTES} bytes",
                "output": None,
            }
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE"):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self._refuse(send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            size += len(message.get("body", b""))
            if size > self.limit:
                return await self._refuse(send)
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
