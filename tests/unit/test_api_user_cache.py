"""The API's per-process user cache: what it keeps, for how long, and what drops it."""

import dataclasses
from datetime import UTC, datetime

import pytest

from services.api import deps
from services.api.deps import UserCache
from shared.contracts.enums import Role
from shared.persistence.models import User

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def user(user_id: int = 7, role: Role = Role.engineer, active: bool = True) -> User:
    return User(
        id=user_id,
        email=f"u{user_id}@wims.test",
        full_name="U",
        password_hash="x",
        role=role,
        is_active=active,
        created_at=NOW,
        updated_at=NOW,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(deps.time, "monotonic", c)
    return c


def test_a_cached_user_comes_back_as_a_read_only_copy_with_the_same_values(
    clock: Clock,
) -> None:
    cache = UserCache(5.0)
    original = user()
    cache.put(original, cache.generation)
    first = cache.get(7)
    assert first is not None and first is not original
    # Requests share the copy, so it must be one no request can change or attach to a
    # session: not an ORM instance, and frozen.
    assert not isinstance(first, User)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.role = Role.admin
    original.role = Role.admin  # nor does a later change to the row object reach it
    assert cache.get(7).role == Role.engineer
    assert (first.id, first.email, first.role, first.is_active, first.created_at) == (
        7,
        "u7@wims.test",
        Role.engineer,
        True,
        NOW,
    )
    assert cache.get(8) is None


def test_an_entry_expires_after_the_ttl(clock: Clock) -> None:
    cache = UserCache(5.0)
    cache.put(user(), cache.generation)
    clock.now += 4.9
    assert cache.get(7) is not None
    clock.now += 0.2
    assert cache.get(7) is None


def test_invalidate_drops_the_user_and_a_read_begun_before_it_is_not_stored(
    clock: Clock,
) -> None:
    cache = UserCache(5.0)
    cache.put(user(), cache.generation)
    before = cache.generation  # a request starts reading the row ...
    cache.invalidate(7)  # ... an admin's change commits meanwhile ...
    assert cache.get(7) is None
    cache.put(user(role=Role.admin), before)  # ... the row read before it is not kept
    assert cache.get(7) is None
    cache.put(user(role=Role.viewer), cache.generation)
    cached = cache.get(7)
    assert cached is not None and cached.role == Role.viewer


def test_inactive_users_and_a_zero_ttl_are_never_cached(clock: Clock) -> None:
    cache = UserCache(5.0)
    cache.put(user(active=False), cache.generation)
    assert cache.get(7) is None
    off = UserCache(0)
    off.put(user(), off.generation)
    assert off.get(7) is None


def test_the_cache_stays_bounded(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(UserCache, "MAX_USERS", 3)
    cache = UserCache(5.0)
    for i in range(1, 5):
        cache.put(user(i), cache.generation)
    assert sum(cache.get(i) is not None for i in range(1, 5)) <= 3
    assert cache.get(4) is not None


def test_a_token_is_verified_once_but_its_expiry_on_every_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The memo of verified tokens saves the signature check, never the expiry check: past
    its expiry a memoised token goes through the full verification again (which refuses an
    expired token). A forged token is refused whatever is memoised; with the cache off
    nothing is kept."""
    from datetime import timedelta

    import jwt

    from shared.infrastructure import auth

    secret = "s" * 40
    token = auth.create_access_token(7, "viewer", secret, timedelta(minutes=5))
    checks: list[str] = []

    def counted(t: str, s: list[str]) -> dict:
        checks.append(t)
        return auth.decode_access_token(t, s)

    monkeypatch.setattr(deps, "decode_access_token", counted)
    cache = UserCache(ttl_s=60)
    assert cache.verified_claims(token, [secret])["sub"] == "7"
    assert cache.verified_claims(token, [secret])["sub"] == "7"
    assert len(checks) == 1  # the second use came from the memo
    forged = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(jwt.InvalidSignatureError):
        cache.verified_claims(forged, [secret])
    six_minutes_on = (datetime.now(UTC) + timedelta(minutes=6)).timestamp()
    monkeypatch.setattr(deps.time, "time", lambda: six_minutes_on)
    cache.verified_claims(token, [secret])
    assert len(checks) == 3  # past its expiry: verified again, not answered from the memo
    off = UserCache(ttl_s=0)
    off.verified_claims(token, [secret])
    off.verified_claims(token, [secret])
    assert len(checks) == 5
