"""Meta's webhook payloads: parsed into small events (parse.py, events.py), checked for what the
database can take (storable.py), cut down to what a subscriber receives (subsets.py), and Kirim's
id carried through a send's callback data (callback.py). Its public names, importable from here."""

from meta.payloads.callback import CALLER_CALLBACK_LIMIT, split_callback_data, with_callback_data
from meta.payloads.events import (
    Change,
    Failure,
    FieldChange,
    InboundMessage,
    Item,
    ParsedWebhook,
    PastMessage,
    StatusUpdate,
)
from meta.payloads.parse import FOLLOWED_FIELDS, parse, summarize
from meta.payloads.storable import unstorable_reason
from meta.payloads.subsets import field_subset, has_items, meta_subset, without_message

__all__ = [
    "CALLER_CALLBACK_LIMIT",
    "FOLLOWED_FIELDS",
    "Change",
    "Failure",
    "FieldChange",
    "InboundMessage",
    "Item",
    "ParsedWebhook",
    "PastMessage",
    "StatusUpdate",
    "field_subset",
    "has_items",
    "meta_subset",
    "parse",
    "split_callback_data",
    "summarize",
    "unstorable_reason",
    "with_callback_data",
    "without_message",
]
