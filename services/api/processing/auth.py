"""OAuth2 password flow and the current user."""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select, update

from services.api import schemas as s
from services.api.deps import CurrentUser, SessionDep, SettingsDep, user_cache
from services.api.errors import ERROR_RESPONSES, ErrorBody
from services.api.metrics import LOGIN_FAILURES
from services.api.ratelimit import LoginThrottle
from shared.infrastructure.auth import create_access_token, hash_password, verify_password
from shared.persistence.models import User

router = APIRouter(prefix="/auth", tags=["auth"])

# Verifying against a real hash when the email is unknown keeps the answer time the same,
# so response timing does not reveal which emails have accounts.
_DUMMY_HASH = hash_password("not-a-real-password-only-for-timing")


def _too_many(retry_after: float) -> HTTPException:
    return HTTPException(
        429,
        f"too many failed logins: try again in {int(retry_after) + 1} s",
        headers={"Retry-After": str(int(retry_after) + 1)},
    )


@router.post(
    "/token",
    response_model=s.Token,
    summary="Log in (OAuth2 password flow): email as username, password",
    responses={
        401: {"model": ErrorBody, "description": "wrong email or password, or inactive user"},
        429: {"model": ErrorBody, "description": "too many failed logins (account or address)"},
        422: ERROR_RESPONSES[422],
    },
)
async def login(
    request: Request,
    response: Response,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
) -> s.Token:
    # A token must not be kept by a browser or a proxy cache (RFC 6749 5.1).
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    throttle: LoginThrottle = request.app.state.login_throttle
    email = form.username.strip().lower()
    # The peer, or the client a trusted proxy names (WIMS_TRUSTED_PROXIES, services/cli.py).
    address = request.client.host if request.client else "unknown"
    wait = throttle.retry_after(email, address)
    if wait > 0:
        LOGIN_FAILURES.labels("throttled").inc()
        raise _too_many(wait)
    user = await session.scalar(select(User).where(User.email == email))
    ok = verify_password(form.password, user.password_hash if user else _DUMMY_HASH)
    if not ok or user is None or not user.is_active:
        throttle.failed(email, address)
        LOGIN_FAILURES.labels("inactive" if ok and user is not None else "credentials").inc()
        raise HTTPException(
            401, "wrong email or password, or the user is inactive", {"WWW-Authenticate": "Bearer"}
        )
    throttle.succeeded(email, address)
    ttl = timedelta(minutes=settings.jwt_ttl_minutes)
    token = create_access_token(
        user.id, str(user.role), settings.jwt_secret, ttl, version=user.token_version
    )
    return s.Token(access_token=token, expires_in=int(ttl.total_seconds()))


@router.post(
    "/logout",
    status_code=204,
    summary="Log out everywhere: revoke every token of the logged-in user",
    description="Bumps the user's token version, so this token and every other token of the "
    "user stop working at once in this API process and within WIMS_API_USER_CACHE_S in "
    "others. Log in again for a new token.",
    responses=ERROR_RESPONSES,
)
async def logout(request: Request, user: CurrentUser, session: SessionDep) -> Response:
    # One version per user rather than a table of revoked token ids: the version is a column
    # of the user row the API already reads (and caches) for every request, so checking it
    # costs nothing on the hot read paths, while a revoked-id table would need a lookup (or a
    # cache of its own) per request and grows until tokens expire. The price: logout ends
    # every session of the user, which is also what one wants after a stolen token.
    await session.execute(
        update(User).where(User.id == user.id).values(token_version=User.token_version + 1)
    )
    await session.commit()
    cache = user_cache(request)
    if cache is not None:
        cache.invalidate(user.id)
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


@router.get(
    "/me", response_model=s.UserRead, summary="The logged-in user", responses=ERROR_RESPONSES
)
async def me(user: CurrentUser, response: Response) -> User:
    response.headers["Cache-Control"] = "no-store"
    return user
