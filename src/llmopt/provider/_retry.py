"""When a hosted call that failed is tried again, and after how long.

A transient failure (429 rate limited, 529 overloaded, 408, 409, any 5xx) is retried
for as long as the request's time budget (``model.timeout``, 60 s by default, covering
every attempt and every wait) allows, however many attempts that takes; an explicit
``model.max_retries`` caps the count as well. The wait honours the server's
``retry-after-ms`` / ``retry-after`` (a wait that does not fit in what is left of the
budget, with a little time left for the attempt, ends the retries at once); without
one it grows exponentially from ``base_s`` up to ``cap_s``, with jitter. A server that cannot be reached at all is
retried ``connection_limit`` times (it is rarely transient, and every case would
otherwise wait out the whole budget); other errors are not retried.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["RetryPolicy", "failed_connection", "retry_after", "retry_delay"]

#: HTTP statuses worth another attempt (with any 5xx).
TRANSIENT_STATUSES = frozenset({408, 409, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """The retry settings of one provider."""

    #: Seconds for the whole request, every attempt and wait included.
    budget_s: float
    #: Most retries (``model.max_retries``); None: as many as the budget allows.
    limit: int | None = None
    base_s: float = 0.5
    cap_s: float = 8.0
    #: Most retries of a server that could not be reached, unless ``limit`` says otherwise.
    connection_limit: int = 4

    @property
    def min_attempt_s(self) -> float:
        """The least time worth an attempt (a tenth of the budget, at most a second): a
        retry that would be cut off by the budget is not made."""
        return min(1.0, self.budget_s / 10.0)


def retry_delay(exc: BaseException, retries: int, remaining_s: float, policy: RetryPolicy) -> float | None:
    """Seconds to wait before retrying after ``exc`` (the ``retries``-th retry so far),
    or None to give up: not transient, out of retries, or out of time."""
    kind = _kind(exc)
    if kind is None:
        return None
    limit = policy.limit if policy.limit is not None else (policy.connection_limit if kind == "connection" else None)
    if limit is not None and retries >= limit:
        return None
    wait = retry_after(exc)
    if wait is None:
        wait = min(policy.cap_s, policy.base_s * 2.0**retries) * (1.0 - 0.25 * random.random())
    return wait if wait + policy.min_attempt_s < remaining_s else None


def _kind(exc: BaseException) -> str | None:
    """``status`` for a transient HTTP answer, ``connection`` for no answer, else None."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        advice = _header(exc, "x-should-retry")
        if advice in ("true", "false"):
            return "status" if advice == "true" else None
        return "status" if status in TRANSIENT_STATUSES or status >= 500 else None
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "APITimeoutError" in names and failed_connection(exc) is None:
        return "status"
    return "connection" if "APIConnectionError" in names else None


def failed_connection(exc: BaseException) -> BaseException | None:
    """The failed connection (refused, unreachable) behind ``exc``, if its chain of
    causes holds one that is not a timeout. The SDKs' aiohttp transport reports a
    refused connection as a connect timeout; this tells the two apart."""
    link: BaseException | None = exc.__cause__ or exc.__context__
    for _ in range(8):
        if link is None:
            return None
        if isinstance(link, OSError) and not isinstance(link, TimeoutError):
            return link
        link = link.__cause__ or link.__context__
    return None


def retry_after(exc: BaseException) -> float | None:
    """The wait the server asked for (``retry-after-ms``, else ``retry-after`` in
    seconds or as an HTTP date), None without one."""
    millis = _header(exc, "retry-after-ms")
    try:
        if millis is not None:
            return max(0.0, float(millis) / 1000.0)
    except ValueError:
        pass
    seconds = _header(exc, "retry-after")
    if seconds is None:
        return None
    try:
        return max(0.0, float(seconds))
    except ValueError:
        return _date_wait(seconds)


def _date_wait(text: str) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _header(exc: BaseException, name: str) -> str | None:
    headers: Any = getattr(getattr(exc, "response", None), "headers", None)
    try:
        value = headers.get(name) if headers is not None else None
    except (AttributeError, TypeError):  # an odd headers object: no advice
        return None
    return str(value).strip().lower() if value is not None else None
