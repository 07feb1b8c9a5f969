"""What an API's answer says about its rate limit: read from its headers, nothing sent.

Understood: the IETF RateLimit header fields in their structured form
(``RateLimit: "default";r=5;t=2`` and ``RateLimit-Policy: "default";q=100;w=60``), in the
older drafts' forms (``RateLimit-Limit`` / ``RateLimit-Remaining`` / ``RateLimit-Reset``, and
``RateLimit: limit=10, remaining=5, reset=2``), the common ``X-RateLimit-*`` headers and
``Retry-After`` (seconds or an HTTP date). A reset above ``EPOCH_THRESHOLD`` is read as a Unix
time (as GitHub and others send it), below as seconds from now.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

# A reset value this large is a Unix timestamp, not a number of seconds.
EPOCH_THRESHOLD = 1_000_000_000
# A 429 that says nothing about when to come back: everyone sharing the budget waits this long.
DEFAULT_429_PAUSE = 1.0
# Longest pause an answer can impose on a budget (a misread date must not stall a deployment).
MAX_PAUSE = 3600.0

_PARAM = re.compile(r";\s*([A-Za-z0-9_*-]+)\s*=\s*(\"[^\"]*\"|[^;,\s]+)")


@dataclass(frozen=True)
class Advice:
    """What the answer asks of everyone sharing the budget.

    ``pause``: send nothing for that many seconds; ``interval``: at most one request every
    ``interval`` seconds for the next ``span`` seconds; ``reason``: for the log."""

    pause: float | None = None
    interval: float | None = None
    span: float = 0.0
    reason: str = ""


def advice_from(status: int, headers: Mapping[str, str], now: float | None = None) -> Advice | None:
    """The rate-limit advice of an answer with ``status`` and ``headers``, or None (nothing
    said). ``headers`` must look up names case-insensitively (as requests' do)."""
    clock = time.time() if now is None else now
    after = retry_after(headers.get("Retry-After"), clock)
    remaining, reset = _remaining_and_reset(headers, clock)
    policy_interval, policy_window = _policy(headers)
    # A 503's Retry-After is about the server's health, not this client's quota: the task that
    # got it waits (its retry policy), the others are not paused.
    if status == 429:
        pause = after if after is not None else reset
        if pause is None or pause <= 0:
            pause = DEFAULT_429_PAUSE
        said = f"Retry-After {after:g} s" if after is not None else "no Retry-After"
        return Advice(pause=min(pause, MAX_PAUSE), reason=f"the API answered {status} ({said})")
    if remaining is not None and reset is not None and reset > 0:
        if remaining <= 0:
            return Advice(
                pause=min(reset, MAX_PAUSE),
                reason=f"the API said 0 requests remain for {reset:g} s",
            )
        interval = reset / remaining
        if policy_interval is not None and policy_interval > interval:
            interval = policy_interval
        return Advice(
            interval=interval,
            span=min(reset, MAX_PAUSE),
            reason=f"the API said {remaining:g} requests remain for {reset:g} s",
        )
    if policy_interval is not None and policy_window is not None:
        return Advice(
            interval=policy_interval,
            span=min(policy_window, MAX_PAUSE),
            reason=f"the API's rate-limit policy allows one request every {policy_interval:g} s",
        )
    return None


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After value: delta-seconds or an HTTP date (RFC 9110 §10.2.3);
    None for no value or one that is neither. The one reading of Retry-After: the token client,
    the page retries and the request budget all use it."""
    if now is None:
        now = time.time()
    if not value:
        return None
    value = value.strip()
    number = _number(value)
    if number is not None:
        return max(0.0, number)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


def _remaining_and_reset(
    headers: Mapping[str, str], now: float
) -> tuple[float | None, float | None]:
    """The tightest (remaining, seconds to reset) the headers state."""
    found: list[tuple[float, float]] = []
    combined = headers.get("RateLimit")
    if combined:
        found += _structured_items(combined, now)
    for prefix in ("RateLimit-", "X-RateLimit-"):
        remaining = _number(headers.get(f"{prefix}Remaining"))
        reset = _reset(headers.get(f"{prefix}Reset"), now)
        if reset is None:
            reset = _number(headers.get(f"{prefix}Reset-After"))
        if remaining is not None and reset is not None:
            found.append((remaining, reset))
    if not found:
        return None, None
    # The tightest pair: the fewest requests per second left.
    return min(found, key=lambda pair: pair[0] / pair[1] if pair[1] > 0 else float("inf"))


def _structured_items(value: str, now: float) -> list[tuple[float, float]]:
    """``"default";r=5;t=2, "burst";r=0;t=1`` (draft 08+), or ``limit=10, remaining=5,
    reset=2`` (drafts 05-07, one dictionary)."""
    pairs: list[tuple[float, float]] = []
    dictionary: dict[str, str] = {}
    for member in _members(value):
        params = dict(_PARAM.findall(";" + member.split(";", 1)[1])) if ";" in member else {}
        remaining, reset = _number(params.get("r")), _number(params.get("t"))
        if remaining is not None and reset is not None:
            pairs.append((remaining, reset))
        name, eq, item = member.partition("=")
        if eq and ";" not in name:
            dictionary[name.strip().lower()] = item.split(";", 1)[0].strip()
    remaining, reset = _number(dictionary.get("remaining")), _reset(dictionary.get("reset"), now)
    if remaining is not None and reset is not None:
        pairs.append((remaining, reset))
    return pairs


def _policy(headers: Mapping[str, str]) -> tuple[float | None, float | None]:
    """The slowest steady rate a policy states: (seconds per request, window in seconds)."""
    best: tuple[float, float] | None = None
    values = [headers.get("RateLimit-Policy"), headers.get("RateLimit-Limit")]
    for value in filter(None, values):
        for member in _members(value):
            head, _, rest = member.partition(";")
            params = dict(_PARAM.findall(";" + rest)) if rest else {}
            quota = _number(params.get("q")) or _number(head)
            window = _number(params.get("w"))
            if quota and window and quota > 0 and (best is None or window / quota > best[0]):
                best = (window / quota, window)
    return best if best is not None else (None, None)


def _members(value: str) -> list[str]:
    """The comma-separated members of a header value (quoted strings kept whole)."""
    members: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            members.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    members.append("".join(current).strip())
    return [m for m in members if m]


def _reset(value: str | None, now: float) -> float | None:
    number = _number(value)
    if number is None:
        return None
    return max(0.0, number - now) if number > EPOCH_THRESHOLD else max(0.0, number)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(str(value).strip().strip('"'))
    except ValueError:
        return None
    return number if number == number and number not in (float("inf"), float("-inf")) else None
