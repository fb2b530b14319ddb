"""The API's per-process user cache: what it keeps, for how long, and what drops it."""

from datetime import UTC, datetime

import pytest

from services.api import deps
from services.api.deps import UserCache
from shared.enums import Role
from shared.models import User

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


def test_a_cached_user_comes_back_as_a_copy_with_the_same_values(clock: Clock) -> None:
    cache = UserCache(5.0)
    original = user()
    cache.put(original, cache.generation)
    first, second = cache.get(7), cache.get(7)
    assert first is not None and second is not None
    assert first is not original and first is not second  # no request shares an object
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
