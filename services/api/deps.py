"""Request dependencies: the session, the current user and the one RBAC check.

Roles are ordered viewer < engineer < admin; a route names the least role it needs with
``require_role`` and nothing else checks roles. The user is loaded from the database on
every request, so a deactivated user's tokens stop working at once and a role change takes
effect on the next request.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.errors import FieldInvalid
from shared.auth import decode_access_token
from shared.enums import Role
from shared.models import User
from shared.settings import Settings

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
    maker = request.app.state.sessionmaker
    if request.method == "GET":
        maker = getattr(request.app.state, "read_sessionmaker", maker)
    async with maker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(401, reason, headers={"WWW-Authenticate": "Bearer"})


async def user_from_token(session: AsyncSession, settings: Settings, token: str | None) -> User:
    if not token:
        raise _unauthorized("not authenticated: send Authorization: Bearer <token>")
    try:
        claims = decode_access_token(token, settings.jwt_secret)
        user_id = int(claims["sub"])
    except (jwt.PyJWTError, KeyError, ValueError):
        raise _unauthorized("invalid or expired token") from None
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise _unauthorized("the user of this token is inactive or no longer exists")
    return user


async def get_current_user(
    session: SessionDep, settings: SettingsDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> User:
    return await user_from_token(session, settings, token)


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
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page:
    if limit > settings.api_max_page_size:
        raise FieldInvalid("limit", f"must be at most {settings.api_max_page_size}")
    return Page(limit, offset)


PageDep = Annotated[Page, Depends(page_params)]
