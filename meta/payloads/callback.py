"""Kirim's message id in a send's `biz_opaque_callback_data`, which Meta echoes in its status webhooks:
a send whose answer was lost is matched back by it. A caller's own value follows ours."""

import re

from core.ids import is_public_id, new_public_id
from meta.payloads.events import Json

CALLBACK_DATA_LIMIT = 512  # Meta's
CALLBACK_PREFIX = "kirim:"
OUR_CALLBACK_LENGTH = len(CALLBACK_PREFIX) + len(new_public_id("msg")) + 1  # prefix, the public id, "|"
CALLER_CALLBACK_LIMIT = CALLBACK_DATA_LIMIT - OUR_CALLBACK_LENGTH
_OURS = re.compile(r"kirim:([^|]*)\|(.*)", re.DOTALL)


def with_callback_data(body: Json, message_id: str) -> Json:
    """The send's body for Meta: Kirim's message id, then the caller's own value, in biz_opaque_callback_data."""
    return {
        **body,
        "biz_opaque_callback_data": f"{CALLBACK_PREFIX}{message_id}|{body.get('biz_opaque_callback_data') or ''}",
    }


def split_callback_data(value: object) -> tuple[str | None, str | None]:
    """(Kirim's message id or None, the caller's own value or None) from an echoed biz_opaque_callback_data."""
    if not isinstance(value, str):
        return None, None
    ours = _OURS.fullmatch(value)
    if ours is None or not is_public_id(ours.group(1), "msg"):
        return None, value
    return ours.group(1), ours.group(2) or None
