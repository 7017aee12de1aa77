"""HTTP retries for catalog services: exponential backoff on 429/5xx answers and dropped connections, the server's
``Retry-After`` honoured, the total number of attempts and the total time waited both bounded."""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError

#: answers worth another try: too many requests, and the server or a gateway being briefly unavailable
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})

_sleep = time.sleep  # tests replace this to record the waits without waiting


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (a number, or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class Retrier:
    """Counts attempts and waits; :meth:`wait` sleeps before the next try or raises when the budget is spent.

    The n-th wait (n = 0, 1, ...) is ``backoff_s * 2**n`` capped at ``max_backoff_s``, or what ``Retry-After``
    asks for; the attempts stop at ``attempts`` or when the next wait would take the total past ``max_total_s``.
    """

    attempts: int = 5
    backoff_s: float = 2.0
    max_backoff_s: float = 60.0
    max_total_s: float = 900.0
    what: str = "request"
    tries: int = 0
    waited: float = 0.0
    waits: list[float] = field(default_factory=list)

    @classmethod
    def from_policy(cls, policy: Any, what: str) -> Retrier:
        return cls(
            attempts=policy.attempts,
            backoff_s=policy.backoff_s,
            max_backoff_s=policy.max_backoff_s,
            max_total_s=policy.max_total_s,
            what=what,
        )

    def wait(self, reason: str, retry_after: float | None = None) -> None:
        self.tries += 1
        if self.tries >= self.attempts:
            raise InputError(f"{self.what}: gave up after {self.tries} attempts (last: {reason})")
        delay = (
            retry_after if retry_after is not None else min(self.max_backoff_s, self.backoff_s * 2 ** (self.tries - 1))
        )
        if self.waited + delay > self.max_total_s:
            raise InputError(
                f"{self.what}: gave up after {self.tries} attempts (last: {reason}); the next wait ({delay:.0f} s) "
                f"would exceed the retry budget of {self.max_total_s:.0f} s"
            )
        self.waits.append(delay)
        self.waited += delay
        _sleep(delay)


def status_reason(response: Any) -> str:
    return f"HTTP {response.status_code}" + (f" {response.reason}" if getattr(response, "reason", None) else "")
