"""The deterministic dataset the protected API serves.

Record ``i`` (ids 1..size) is ``{"id": i, "name": "item-i", "updated_at": EPOCH +
(i - 1) * STEP, "pad": "x" * pad}``: ids and timestamps rise together, so a time
filter selects a contiguous id range and is computed, not scanned.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
STEP = timedelta(hours=1)
DEFAULT_SIZE = 1000


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO 8601 timestamp; naive values are UTC.

    An unencoded ``+`` in a query string arrives as a space
    (``2024-01-01T00:00:00 00:00``), so that spelling is accepted too.
    """
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        head, sep, tail = value.rpartition(" ")
        if not sep:
            raise
        parsed = datetime.fromisoformat(f"{head}+{tail}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def updated_at(record_id: int) -> datetime:
    return EPOCH + (record_id - 1) * STEP


def make_record(record_id: int, pad: int = 0) -> dict[str, Any]:
    return {
        "id": record_id,
        "name": f"item-{record_id}",
        "updated_at": format_timestamp(updated_at(record_id)),
        "pad": "x" * pad,
    }


def _steps_from_epoch(moment: datetime) -> int:
    """Smallest k with EPOCH + k * STEP >= moment."""
    return -((EPOCH - moment) // STEP)


class Dataset:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size

    @property
    def size(self) -> int:
        return self._size

    @size.setter
    def size(self, value: int) -> None:
        if value < 0:
            raise ValueError("dataset size must be >= 0")
        self._size = value

    def window(
        self, updated_since: datetime | None = None, updated_before: datetime | None = None
    ) -> range:
        """Ids of records with ``updated_since <= updated_at < updated_before``."""
        first, last = 1, self._size
        if updated_since is not None:
            first = max(first, _steps_from_epoch(updated_since) + 1)
        if updated_before is not None:
            last = min(last, _steps_from_epoch(updated_before))
        return range(first, max(first, last + 1))
