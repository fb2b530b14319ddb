"""Login throttling that an attacker cannot turn against the account's owner.

A hard lock per account (N failures and even the right password is refused) lets anyone who
knows an email lock its owner out, the admin included, by sending N wrong passwords now and
then. Progressive delays have the same flaw, only slower. So failures are counted per
account, per client address and per (account, address) pair, and an attempt is refused only
when it comes from an address that is itself suspect:

- the address has too many failures over all accounts (password spraying);
- the address has too many failures on this account (guessing from one place); or
- the account has too many failures over all addresses (a distributed attack) and this
  address is one of them, having failed on it at least once within the window.

An address with no failure on the account still gets to try, so the owner logging in from
their usual place is not locked by someone else's guesses; a distributed attacker gets one
guess per address and window once the account is under attack. The owner is locked only
when the attacker shares their address (one NAT): telling them apart would need a second
factor. A successful login clears the pair, not the account's count, so a guessed password
elsewhere does not hand the attacker a fresh allowance.

In-process on purpose: it needs no extra infrastructure, and each API process throttles on
its own, so with N processes behind a balancer an attacker gets at most N times the limit,
still far too few guesses to matter against argon2-hashed passwords. A shared limiter
(PostgreSQL or Redis) would be the next step if that bound is not good enough.
Limits come from Settings (``WIMS_LOGIN_MAX_FAILURES_PER_ACCOUNT``,
``WIMS_LOGIN_MAX_FAILURES_PER_ADDRESS``, ``WIMS_LOGIN_WINDOW_S``). The client address is
the peer's, or the X-Forwarded-For of a proxy in ``WIMS_TRUSTED_PROXIES`` (services/cli.py).
"""

import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """At most ``limit`` events per key within the last ``window_s`` seconds."""

    MAX_KEYS = 100_000

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

    def count(self, key: str) -> int:
        events = self._trim(key, self._clock())
        return 0 if events is None else len(events)

    def retry_after(self, key: str) -> float:
        """0 when ``key`` may try now, else the seconds until its oldest event expires."""
        now = self._clock()
        events = self._trim(key, now)
        if events is None or len(events) < self.limit:
            return 0.0
        return max(0.0, events[0] + self.window_s - now)

    def newest_expires_in(self, key: str) -> float:
        """Seconds until the newest event of ``key`` leaves the window (0: none)."""
        now = self._clock()
        events = self._trim(key, now)
        return 0.0 if events is None else max(0.0, events[-1] + self.window_s - now)

    def hit(self, key: str) -> None:
        now = self._clock()
        if len(self._events) >= self.MAX_KEYS:
            # Keys nobody asks about again are only dropped when trimmed: sweep them all.
            for stale in list(self._events):
                self._trim(stale, now)
        self._trim(key, now)
        self._events.setdefault(key, deque()).append(now)

    def reset(self, key: str) -> None:
        self._events.pop(key, None)


class LoginThrottle:
    """The rule in the module docstring, over three sliding windows."""

    def __init__(
        self,
        per_account: int,
        per_address: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.account = SlidingWindowLimiter(per_account, window_s, clock)
        self.address = SlidingWindowLimiter(per_address, window_s, clock)
        self.pair = SlidingWindowLimiter(per_account, window_s, clock)

    @staticmethod
    def _pair(account: str, address: str) -> str:
        return f"{account}\x00{address}"

    def retry_after(self, account: str, address: str) -> float:
        """0 when this address may try this account now, else seconds to wait."""
        pair = self._pair(account, address)
        wait = max(self.address.retry_after(address), self.pair.retry_after(pair))
        if self.account.retry_after(account) > 0 and self.pair.count(pair) > 0:
            # Under a distributed attack, addresses that failed on the account wait until
            # their own last failure leaves the window.
            wait = max(wait, self.pair.newest_expires_in(pair))
        return wait

    def failed(self, account: str, address: str) -> None:
        self.account.hit(account)
        self.address.hit(address)
        self.pair.hit(self._pair(account, address))

    def succeeded(self, account: str, address: str) -> None:
        self.pair.reset(self._pair(account, address))
