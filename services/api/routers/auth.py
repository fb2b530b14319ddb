"""OAuth2 password flow and the current user."""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select

from services.api import schemas as s
from services.api.deps import CurrentUser, SessionDep, SettingsDep
from services.api.errors import ERROR_RESPONSES, ErrorBody
from services.api.metrics import LOGIN_FAILURES
from shared.auth import create_access_token, hash_password, verify_password
from shared.models import User

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
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
) -> s.Token:
    account_limiter = request.app.state.login_account_limiter
    address_limiter = request.app.state.login_address_limiter
    email = form.username.strip().lower()
    address = request.client.host if request.client else "unknown"
    wait = max(account_limiter.retry_after(email), address_limiter.retry_after(address))
    if wait > 0:
        LOGIN_FAILURES.labels("throttled").inc()
        raise _too_many(wait)
    user = await session.scalar(select(User).where(User.email == email))
    ok = verify_password(form.password, user.hashed_password if user else _DUMMY_HASH)
    if not ok or user is None or not user.is_active:
        account_limiter.hit(email)
        address_limiter.hit(address)
        LOGIN_FAILURES.labels("inactive" if ok and user is not None else "credentials").inc()
        raise HTTPException(
            401, "wrong email or password, or the user is inactive", {"WWW-Authenticate": "Bearer"}
        )
    account_limiter.reset(email)
    ttl = timedelta(minutes=settings.jwt_ttl_minutes)
    token = create_access_token(user.id, str(user.role), settings.jwt_secret, ttl)
    return s.Token(access_token=token, expires_in=int(ttl.total_seconds()))


@router.get(
    "/me", response_model=s.UserRead, summary="The logged-in user", responses=ERROR_RESPONSES
)
async def me(user: CurrentUser) -> User:
    return user
