"""Who is pushing: a SCADA client's API key, or an engineer's bearer token.

- ``X-API-Key``: looked up by its SHA-256 hash in ``api_key`` (the API service creates and
  revokes keys). The answer (the key's source name, or "unknown/revoked") is cached for
  ``ingest_auth_cache_s`` seconds so a historian pushing many times a second costs no
  database round trip per request; a revocation therefore takes effect within that TTL.
- ``Authorization: Bearer <jwt>``: the API's access token, verified with the current or a
  previous JWT secret as the API does; the user is read from the database on every request
  (manual pushes are rare), must be active and an engineer or admin, and the token's
  version must be the user's current one: a token revoked by a logout, a password, role or
  activation change is refused here at once too. Readings pushed this way get the source
  ``manual``.

Missing, wrong or revoked credentials: 401 with ``WWW-Authenticate``; a viewer: 403. The
two lookups' queries are in store.py.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass

import jwt
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest import store
from services.ingest.metrics import AUTH_FAILURES
from shared.contracts.enums import Role
from shared.infrastructure.auth import decode_access_token, hash_api_key, token_version

MANUAL_SOURCE = "manual"
_PUSH_ROLES = frozenset({Role.engineer.value, Role.admin.value})
_MAX_CACHED_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    source: str
    kind: str  # "api_key" or "user"


class AuthError(Exception):
    def __init__(self, status: int, detail: str, reason: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.reason = reason


class Authenticator:
    def __init__(
        self, engine: AsyncEngine, jwt_secrets: str | Sequence[str], cache_s: float
    ) -> None:
        self._engine = engine
        self._jwt_secrets = jwt_secrets
        self._cache_s = cache_s
        # key hash -> (expires at, source or None for unknown/revoked)
        self._keys: dict[str, tuple[float, str | None]] = {}

    async def authenticate(self, api_key: str | None, authorization: str | None) -> Principal:
        if api_key:
            return await self._by_api_key(api_key)
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return await self._by_token(token.strip())
        raise _fail(401, "not authenticated: send X-API-Key or Authorization: Bearer", "missing")

    async def _by_api_key(self, secret: str) -> Principal:
        digest = hash_api_key(secret)
        now = time.monotonic()
        cached = self._keys.get(digest)
        if cached is not None and cached[0] > now:
            source = cached[1]
        else:
            row = await store.api_key_row(self._engine, digest)
            source = str(row[0]) if row is not None and row[1] is None else None
            if len(self._keys) >= _MAX_CACHED_KEYS:
                self._keys.clear()  # wrong keys must not grow the cache without bound
            self._keys[digest] = (now + self._cache_s, source)
        if source is None:
            raise _fail(401, "invalid or revoked API key", "bad_api_key")
        return Principal(source=source, kind="api_key")

    async def _by_token(self, token: str) -> Principal:
        try:
            claims = decode_access_token(token, self._jwt_secrets)
            user_id = int(claims["sub"])
            version = token_version(claims)
        except (jwt.PyJWTError, KeyError, ValueError, TypeError):  # TypeError: a non-scalar sub
            raise _fail(401, "invalid or expired token", "bad_token") from None
        row = await store.app_user_row(self._engine, user_id)
        if row is None or not row[1]:
            raise _fail(401, "the user of this token is inactive or no longer exists", "bad_token")
        if version != (row[2] or 0):
            raise _fail(401, "this token was revoked (logout or credentials changed)", "bad_token")
        role = str(row[0])
        if role not in _PUSH_ROLES:
            raise _fail(
                403, f"pushing readings requires the engineer role (you are {role})", "role"
            )
        return Principal(source=MANUAL_SOURCE, kind="user")


def _fail(status: int, detail: str, reason: str) -> AuthError:
    AUTH_FAILURES.labels(reason).inc()
    return AuthError(status, detail, reason)
