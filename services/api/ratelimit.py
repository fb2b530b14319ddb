"""Login throttling: a sliding window of failed attempts per account and per address.

In-process on purpose: it needs no extra infrastructure, and each API process throttles on
its own, so with N processes behind a balancer an attacker gets at most N times the limit,
still far too few guesses to matter against argon2-hashed passwords. A shared limiter
(PostgreSQL or Redis) would be the next step if that bound is not good enough.
Limits come from Settings (``WIMS_LOGIN_MAX_FAILURES_PER_ACCOUNT``,
``WIMS_LOGIN_MAX_FAILURES_PER_ADDRESS``, ``WIMS_LOGIN_WINDOW_S``).
"""

import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """At most ``limit`` events per key within the last ``window_s`` seconds."""

    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._events: dict[str, deque[float]] = {}

    def _trim(self, key: str, now: float) -> deque[float] | None:
        events = self._events.get(key)
        if events is None:
            return None
        while events and events[0] <= now - self.window_s:
            events.popleft()
        if not events:
            # Forget idle keys so a scan of many addresses cannot grow memory without bound.
            del self._events[key]
            return None
        return events

    def retry_after(self, key: str) -> float:
        """0 when ``key`` may try now, else the seconds until its oldest event expires."""
        now = self._clock()
        events = self._trim(key, now)
        if events is None or len(events) < self.limit:
            return 0.0
        return max(0.0, events[0] + self.window_s - now)

    def hit(self, key: str) -> None:
        now = self._clock()
        self._trim(key, now)
        self._events.setdefault(key, deque()).append(now)

    def reset(self, key: str) -> None:
        self._events.pop(key, None)
