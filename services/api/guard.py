"""The API's request body guard: a size limit, and authentication before any body is read.

FastAPI reads and parses a request body before it runs a route's dependencies, the token
check included, so without this layer anyone could make the API read and parse bodies as
large as they like without a token. This ASGI middleware, in front of every route:

- refuses a body whose Content-Length is above ``WIMS_API_MAX_BODY_BYTES`` (413) before
  reading any of it, and counts the bytes of a body without a length (chunked) as they
  arrive, answering 413 as soon as the count passes the limit;
- answers 401 to a request that carries a body without a bearer token that is correctly
  signed and unexpired, before reading the body, except on the public routes (the token
  endpoint). It checks the signature only; the route's own dependency still checks the
  user and the token's version (services/api/deps.py).

Requests without a body (GET, the hot read paths) pass untouched.
"""

from typing import Any

import orjson
from fastapi import HTTPException

from services.api.deps import token_looks_valid
from shared.infrastructure.settings import Settings


class _BodyTooLarge(HTTPException):
    pass


async def _answer(
    send: Any, status: int, field: str, reason: str, code: str, extra: list | None = None
) -> None:
    body = orjson.dumps(
        {
            "detail": f"{field}: {reason}",
            "errors": [{"field": field, "reason": reason, "code": code}],
        }
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _bearer(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


class BodyGuard:
    def __init__(self, app: Any, settings: Settings, public_paths: frozenset[str]) -> None:
        self.app = app
        self.settings = settings
        self.limit = settings.api_max_body_bytes
        self.public_paths = public_paths

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            name = name.lower()
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -1
            elif name == b"transfer-encoding":
                chunked = True
        if (length is None and not chunked) or length == 0:
            await self.app(scope, receive, send)  # no body
            return
        if length is not None and length < 0:
            await _answer(send, 400, "Content-Length", "is not a byte count", "invalid")
            return
        if length is not None and length > self.limit:
            await _answer(send, 413, "body", self._too_large(), "too_large")
            return
        if scope["path"] not in self.public_paths:
            token = _bearer(scope["headers"])
            if token is None or not token_looks_valid(self.settings, token):
                await _answer(
                    send,
                    401,
                    "Authorization",
                    "send a valid bearer token (Authorization: Bearer <token>) with a body",
                    "not_authenticated",
                    [(b"www-authenticate", b"Bearer")],
                )
                return
        await self._counted(scope, receive, send)

    def _too_large(self) -> str:
        return f"larger than {self.limit} bytes (WIMS_API_MAX_BODY_BYTES)"

    async def _counted(self, scope: Any, receive: Any, send: Any) -> None:
        state = {"received": 0, "exceeded": False, "started": False}

        async def counting_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.limit:
                    state["exceeded"] = True
                    # FastAPI lets an HTTPException raised while reading the body through
                    # (any other becomes a 400); the answer is replaced below anyway.
                    raise _BodyTooLarge(413, self._too_large())
            return message

        async def guarded_send(message: Any) -> None:
            if state["exceeded"]:
                # Whatever the app made of the exception, the client gets one clear 413.
                if message["type"] == "http.response.start" and not state["started"]:
                    state["started"] = True
                    await _answer(send, 413, "body", self._too_large(), "too_large")
                return
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            if state["started"]:
                raise
            await _answer(send, 413, "body", self._too_large(), "too_large")
