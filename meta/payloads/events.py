"""The small events Meta's webhook payloads are parsed into (meta.payloads.parse)."""

import datetime
from dataclasses import dataclass, field
from typing import Any, TypedDict

# Meta's JSON objects, as it sends them.
Json = dict[str, Any]


@dataclass(frozen=True)
class InboundMessage:
    """An inbound message. Its sender is known by phone number (`contact_wa_id`), by business-scoped
    user id (`contact_user_id`), or both: Meta leaves the number out once a user adopts a username."""

    phone_number_id: str
    wamid: str
    contact_wa_id: str
    contact_name: str
    type: str
    text: str
    timestamp: datetime.datetime
    payload: Json
    contact_user_id: str = ""
    group_id: str = ""
    new_user_id: str = ""  # a `user_changed_user_id` system message: the id the contact goes by now

    @property
    def label(self) -> str:
        return f"message {self.wamid}"


@dataclass(frozen=True)
class PastMessage(InboundMessage):
    """A message of the WhatsApp Business app on the same number (coexistence): one staff sent from the
    phone (`smb_message_echoes`), or one of the app's past chats (`history`), either way."""

    direction: str = "outbound"
    status: str = "sent"
    field: str = "smb_message_echoes"


@dataclass(frozen=True)
class Change:
    """A message's edit or deletion (`edit`, `revoke`) by the user (`messages`) or by the business from
    the app (`smb_message_echoes`): it names the message it changes."""

    phone_number_id: str
    wamid: str  # the edit's or revoke's own id
    original_wamid: str
    kind: str  # "edit" or "revoke"
    timestamp: datetime.datetime
    message: Json  # an edit's new message object ({"type": ..., type: {...}}); {} for a revoke
    by_business: bool

    @property
    def label(self) -> str:
        return f"{self.kind} {self.wamid} of {self.original_wamid}"


@dataclass(frozen=True)
class FieldChange:
    """A change of a field other than `messages` and `smb_message_echoes` (history, smb_app_state_sync,
    the templates', the number's and the account's): its WABA (the entry's id) and Meta's value."""

    field: str
    waba_id: str
    phone_number_id: str  # from `metadata`, where Meta gives one
    value: Json
    time: datetime.datetime


@dataclass(frozen=True)
class StatusUpdate:
    phone_number_id: str
    wamid: str
    status: str
    timestamp: datetime.datetime
    errors: list[Any] | None = None
    message_id: str | None = None  # Kirim's id of the send, from biz_opaque_callback_data
    callback_data: str | None = None  # the sender's own biz_opaque_callback_data, ours taken out
    pricing: Json | None = None  # Meta's {billable, pricing_model, category, type}

    @property
    def label(self) -> str:
        return f"status {self.status!r} of {self.wamid}"


# An item the database stores, or refuses alone (meta.payloads.unstorable_reason).
Item = InboundMessage | StatusUpdate | Change


class Failure(TypedDict):
    """An item of a webhook that cannot be used or stored, and why: kept on its WebhookEvent."""

    item: str
    reason: str


@dataclass
class ParsedWebhook:
    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # human-readable reasons, for the log
    failed: list[Failure] = field(default_factory=list)  # the items that cannot be used
    past: list[PastMessage] = field(default_factory=list)  # echoes and history
    changes: list[Change] = field(default_factory=list)  # edits and deletions
    fields: list[FieldChange] = field(default_factory=list)  # every other field Kirim follows
    suspect: bool = True  # the body may hold an unstorable value: each item's values are walked
