"""Whether the database can take an item, asked before anything is written: a bad item fails alone."""

from core.parsers import find_unstorable
from meta.payloads.events import Change, InboundMessage, Item

# Longest values the tables hold; longer ones cannot be Meta's and fail their item alone.
WAMID_LENGTH = 255
PHONE_NUMBER_ID_LENGTH = 20
USER_ID_LENGTH = 64
GROUP_ID_LENGTH = 128

SENDER_ID_LIMITS = (
    ("from", "contact_wa_id", USER_ID_LENGTH),
    ("from_user_id", "contact_user_id", USER_ID_LENGTH),
    ("system.user_id", "new_user_id", USER_ID_LENGTH),
    ("group_id", "group_id", GROUP_ID_LENGTH),
)


def unstorable_reason(item: Item, suspect: bool = True) -> str | None:
    """Why the database cannot take this item, or None. Checked before anything is written, so a bad
    item fails alone and the common case pays no savepoints: a number JSON cannot hold (`1e999` is
    Python's infinity, which PostgreSQL's JSON refuses), a lone UTF-16 surrogate (not UTF-8), a value
    longer than its column. Values are walked only when the body was `suspect`."""
    if len(item.wamid) > WAMID_LENGTH:
        return f"id longer than {WAMID_LENGTH} characters"
    if len(item.phone_number_id) > PHONE_NUMBER_ID_LENGTH:
        return f"metadata.phone_number_id longer than {PHONE_NUMBER_ID_LENGTH} characters"
    if isinstance(item, Change):
        return _unstorable(item.message, "edit.message") if suspect else None
    values: list[tuple[object, str]]
    if isinstance(item, InboundMessage):
        for name, attribute, limit in SENDER_ID_LIMITS:
            if len(getattr(item, attribute)) > limit:
                return f"{name} longer than {limit} characters"
        values = [(item.payload, "")]
    else:
        values = [(item.errors, "errors"), (item.status, "status"), (item.pricing, "pricing")]
    return next(filter(None, (_unstorable(value, path) for value, path in values)), None) if suspect else None


def _unstorable(value: object, path: str) -> str | None:
    found = find_unstorable(value, path)
    return f"{found.param}: {found.problem}" if found else None
