"""Reading Meta's payloads forgivingly: a value of the wrong kind reads as empty, never raises."""

import datetime
from typing import Any

from django.utils import timezone

from meta.payloads.events import Json


def as_dict(value: object) -> Json:
    """`value` if Meta gave an object there, else {}."""
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    """`value` if Meta gave a list there, else []."""
    return value if isinstance(value, list) else []


def id_text(value: object) -> str:
    """A sender's id as Meta writes it, a non-empty string; anything else is no id."""
    return value.strip() if isinstance(value, str) else ""


def timestamp_of(value: Any) -> datetime.datetime:
    """Meta's Unix time in seconds as an aware datetime; now, when it is none."""
    try:
        return datetime.datetime.fromtimestamp(int(value), tz=datetime.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return timezone.now()


def number_of(value: Json) -> str:
    """The phone_number_id of a change's value (its `metadata`), or ""."""
    return str(as_dict(value.get("metadata")).get("phone_number_id", ""))
