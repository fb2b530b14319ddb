"""Request dependencies: the session, the current user and the one RBAC check.

Roles are ordered viewer < engineer < admin; a route names the least role it needs with
``require_role`` and nothing else checks roles. The token only names the user: their role
and whether they are active come from the database, not from the token. A process keeps a
user it has read for ``WIMS_API_USER_CACHE_S`` seconds (loading the user was a round trip
and a third of the API's CPU on a hot read); a change made through the users routes drops
it at once, so a deactivated user's tokens stop working on the next request, and a role
change applies to it. Another API process, or a change made outside the API, is seen
within ``WIMS_API_USER_CACHE_S``.

Revocation: a token carries the ``token_version`` of its user at issue (shared/infrastructure/auth.py);
a password, role or activation change and ``POST /auth/logout`` bump the user's version,
so every token issued before is refused. The version is a column of the user row this
module reads (or has cached) anyway, so the check costs no database round trip.
"""

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, make_dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.errors import FieldInvalid
from shared.contracts.enums import Role
from shared.infrastructure.auth import decode_access_token, token_version
from shared.infrastructure.settings import Settings
from shared.persistence.models import User

ROLE_RANK = {Role.viewer: 0, Role.engineer: 1, Role.admin: 2}

oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token",
    auto_error=False,
    description="OAuth2 password flow: POST email (as username) and password to "
    "/api/v1/auth/token, send the access_token as `Authorization: Bearer <token>`.",
)


# Dependencies are async even when they do no I/O: FastAPI runs a sync one in the thread
# pool, a hand-off that costs more than the work on the hot read paths.
async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; handlers that change data commit once, at the end.

    GET requests never write, so they run on the read pool: autocommit connections without
    a pre-ping, which saves three of the five round trips a short read would otherwise make
    (ping, BEGIN, ROLLBACK). A connection that died with a database restart fails one read
    (503) and the pool is then refreshed."""
    async with _sessionmaker(request)() as session:
        yield session


def _sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    maker = request.app.state.sessionmaker
    if request.method == "GET":
        maker = getattr(request.app.state, "read_sessionmaker", maker)
    return maker


SessionDep = Annotated[AsyncSession, Depends(get_session)]


_USER_COLUMNS = tuple(attr.key for attr in User.__mapper__.column_attrs)

# A user as the cache hands them out: a frozen copy of their row (every column of ``User``,
# as attributes), not an ORM instance. Shared by the requests it serves, it can be neither
# changed, nor added to a session, nor expired by another request's rollback; building a
# fresh ``User`` per request instead was a twentieth of a hot read's CPU (py-spy).
CachedUser = make_dataclass("CachedUser", _USER_COLUMNS, frozen=True, slots=True)


class UserCache:
    """Active users this process has read, by id, each for ``ttl_s`` seconds, as
    ``CachedUser``s (read-only copies of their rows).

    ``invalidate`` also makes a read that was already under way when the change committed
    not store what it read (the generation moved on), so a stale row cannot come back."""

    MAX_USERS = 10_000

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.generation = 0
        self._users: dict[int, tuple[float, Any]] = {}
        self._claims: dict[str, dict[str, Any]] = {}

    def verified_claims(self, token: str, secrets: Sequence[str]) -> dict[str, Any]:
        """The token's claims, its signature checked once per process: a signature that
        verified verifies again with the same keys, so only the expiry, checked here on each
        use, can change (the version is checked against the user by the caller). Checking
        the signature was a tenth of the api's CPU on a hot read. Raises like
        ``decode_access_token``; the claims are shared, never to be changed."""
        claims = self._claims.get(token)
        if claims is not None and time.time() < claims["exp"]:
            return claims
        claims = decode_access_token(token, secrets)
        if self.ttl_s > 0:
            if len(self._claims) >= self.MAX_USERS:
                self._claims.clear()  # a bound, not an eviction policy
            self._claims[token] = claims
        return claims

    def get(self, user_id: int) -> Any:
        """The user's ``CachedUser``, or None."""
        entry = self._users.get(user_id)
        if entry is None:
            return None
        expires, user = entry
        if time.monotonic() >= expires:
            del self._users[user_id]
            return None
        return user

    def put(self, user: User, generation: int) -> None:
        if self.ttl_s <= 0 or generation != self.generation or not user.is_active:
            return
        if len(self._users) >= self.MAX_USERS:
            self._users.clear()  # a bound, not an eviction policy: users are few
        row = CachedUser(*(getattr(user, name) for name in _USER_COLUMNS))
        self._users[user.id] = (time.monotonic() + self.ttl_s, row)

    def invalidate(self, user_id: int) -> None:
        self.generation += 1
        self._users.pop(user_id, None)


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(401, reason, headers={"WWW-Authenticate": "Bearer"})


async def user_from_token(
    session: AsyncSession | async_sessionmaker[AsyncSession],
    settings: Settings,
    token: str | None,
    cache: UserCache | None = None,
) -> User:
    """The active user a valid, unrevoked token names (401 otherwise), from ``cache`` when
    it holds them, else read through ``session`` (or a session of this maker, opened only
    for that read)."""
    if not token:
        raise _unauthorized("not authenticated: send Authorization: Bearer <token>")
    try:
        secrets = settings.jwt_verification_secrets
        if cache is not None:
            claims = cache.verified_claims(token, secrets)
        else:
            claims = decode_access_token(token, secrets)
        user_id = int(claims["sub"])
        version = token_version(claims)
    except (jwt.PyJWTError, KeyError, ValueError, TypeError):
        raise _unauthorized("invalid or expired token") from None
    user = cache.get(user_id) if cache is not None else None
    if user is None:
        generation = cache.generation if cache is not None else 0
        if isinstance(session, AsyncSession):
            user = await session.get(User, user_id)
        else:
            async with session() as own:
                user = await own.get(User, user_id)
        if user is None or not user.is_active:
            raise _unauthorized("the user of this token is inactive or no longer exists")
        if cache is not None:
            cache.put(user, generation)
    if version != (user.token_version or 0):
        raise _unauthorized(
            "this token was revoked (logout, or a password, role or activation change): "
            "log in again"
        )
    return user


def token_looks_valid(settings: Settings, token: str) -> bool:
    """Signature and expiry only, no database: what the body guard checks before a request
    body is read (services/api/guard.py). The route still runs ``user_from_token``."""
    try:
        decode_access_token(token, settings.jwt_verification_secrets)
    except jwt.PyJWTError:
        return False
    return True


def user_cache(request: Request) -> UserCache | None:
    """The process's user cache (none before the lifespan has made one)."""
    return getattr(request.app.state, "user_cache", None)


async def get_current_user(
    request: Request,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> User:
    # No session of its own unless the cache misses: on a hot read that needs none (/state,
    # /fleet run on the driver connection), making and closing an unused session was a
    # fifth of the request's CPU (cProfile, in process).
    return await user_from_token(_sessionmaker(request), settings, token, user_cache(request))


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_role(minimum: Role) -> Any:
    """``Depends`` that lets the request through when the user's role is at least ``minimum``:
    401 without a valid token, 403 with too low a role."""

    async def check(user: CurrentUser) -> User:
        if ROLE_RANK[Role(user.role)] < ROLE_RANK[minimum]:
            raise HTTPException(403, f"requires the {minimum.value} role (you are {user.role})")
        return user

    return Depends(check)


Viewer = Annotated[User, require_role(Role.viewer)]
Engineer = Annotated[User, require_role(Role.engineer)]
Admin = Annotated[User, require_role(Role.admin)]


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


async def page_params(
    settings: SettingsDep,
    limit: Annotated[
        int, Query(ge=1, description="page size (at most WIMS_API_MAX_PAGE_SIZE)")
    ] = 100,
    # PostgreSQL's OFFSET is a bigint.
    offset: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
) -> Page:
    if limit > settings.api_max_page_size:
        raise FieldInvalid("limit", f"must be at most {settings.api_max_page_size}")
    return Page(limit, offset)


PageDep = Annotated[Page, Depends(page_params)]
