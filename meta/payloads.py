"""Meta's webhook payload, normalized into small events: inbound messages and status updates.

Parsing is forgiving, never raising, because a well-signed payload is acknowledged whatever it holds:
a message or status that cannot be used is a failed item with its reason (recorded on the event),
and what is not an item at all (another field, a body that is not Meta's) is skipped and logged."""

import datetime
import re
from dataclasses import dataclass, field

from django.utils import timezone

from core.ids import is_public_id, new_public_id
from core.parsers import find_unstorable


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
    payload: dict
    contact_user_id: str = ""
    group_id: str = ""
    new_user_id: str = ""  # a `user_changed_user_id` system message: the id the contact goes by now

    @property
    def label(self):
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
    message: dict  # an edit's new message object ({"type": ..., type: {...}}); {} for a revoke
    by_business: bool

    @property
    def label(self):
        return f"{self.kind} {self.wamid} of {self.original_wamid}"


@dataclass(frozen=True)
class FieldChange:
    """A change of a field other than `messages` and `smb_message_echoes` (history, smb_app_state_sync,
    the templates', the number's and the account's): its WABA (the entry's id) and Meta's value."""

    field: str
    waba_id: str
    phone_number_id: str  # from `metadata`, where Meta gives one
    value: dict
    time: datetime.datetime


@dataclass(frozen=True)
class StatusUpdate:
    phone_number_id: str
    wamid: str
    status: str
    timestamp: datetime.datetime
    errors: list | None = None
    message_id: str | None = None  # Kirim's id of the send, from biz_opaque_callback_data
    callback_data: str | None = None  # the sender's own biz_opaque_callback_data, ours taken out
    pricing: dict | None = None  # Meta's {billable, pricing_model, category, type}

    @property
    def label(self):
        return f"status {self.status!r} of {self.wamid}"


# Every send carries Kirim's message id in `biz_opaque_callback_data`, which Meta echoes in its status
# webhooks: a send whose answer was lost is matched back by it. A caller's own value follows ours.
CALLBACK_DATA_LIMIT = 512  # Meta's
CALLBACK_PREFIX = "kirim:"
OUR_CALLBACK_LENGTH = len(CALLBACK_PREFIX) + len(new_public_id("msg")) + 1  # prefix, the public id, "|"
CALLER_CALLBACK_LIMIT = CALLBACK_DATA_LIMIT - OUR_CALLBACK_LENGTH
_OURS = re.compile(r"kirim:([^|]*)\|(.*)", re.DOTALL)


def with_callback_data(body, message_id):
    """The send's body for Meta: Kirim's message id, then the caller's own value, in biz_opaque_callback_data."""
    return {
        **body,
        "biz_opaque_callback_data": f"{CALLBACK_PREFIX}{message_id}|{body.get('biz_opaque_callback_data') or ''}",
    }


def split_callback_data(value):
    """(Kirim's message id or None, the caller's own value or None) from an echoed biz_opaque_callback_data."""
    if not isinstance(value, str):
        return None, None
    ours = _OURS.fullmatch(value)
    if ours is None or not is_public_id(ours.group(1), "msg"):
        return None, value
    return ours.group(1), ours.group(2) or None


@dataclass
class ParsedWebhook:
    messages: list = field(default_factory=list)
    statuses: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # human-readable reasons, for the log
    failed: list = field(default_factory=list)  # {"item", "reason"} of items that cannot be used
    past: list = field(default_factory=list)  # PastMessage: echoes and history
    changes: list = field(default_factory=list)  # Change: edits and deletions
    fields: list = field(default_factory=list)  # FieldChange: every other field Kirim follows
    suspect: bool = True  # the body may hold an unstorable value: each item's values are walked


def _timestamp(value):
    try:
        return datetime.datetime.fromtimestamp(int(value), tz=datetime.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return timezone.now()


def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return value if isinstance(value, list) else []


def summarize(message):
    """A short text for the inbox: the body, caption, choice or a description of the content."""
    kind = message.get("type")
    content = _dict(message.get(kind))
    if kind == "text":
        return str(content.get("body", ""))
    if kind in ("image", "video", "document", "audio", "sticker"):
        return str(content.get("caption") or content.get("filename") or "")
    if kind == "location":
        parts = [content.get("name"), content.get("address")]
        return ", ".join(str(p) for p in parts if p) or f"{content.get('latitude')}, {content.get('longitude')}"
    if kind == "contacts":
        names = [
            _dict(c.get("name")).get("formatted_name", "")
            for c in _list(message.get("contacts"))
            if isinstance(c, dict)
        ]
        return ", ".join(n for n in names if n)
    if kind == "interactive":
        reply = _dict(content.get(content.get("type")))
        return str(reply.get("title", ""))
    if kind == "button":
        return str(content.get("text", ""))
    if kind == "reaction":
        return str(content.get("emoji", ""))
    if kind == "template":
        return str(content.get("name", ""))
    return ""


def _without_nul(value):
    """PostgreSQL stores no NUL character in text or JSON; Meta's content should carry none."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def parse(payload, suspect=True):
    """`payload` as events; `suspect` unless core.parsers.loads_noting_unstorable found it clean."""
    parsed = ParsedWebhook(suspect=suspect)
    if parsed.suspect:
        payload = _without_nul(payload)
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        parsed.skipped.append("not a whatsapp_business_account payload")
        return parsed
    for entry in _list(payload.get("entry")):
        for change in _list(_dict(entry).get("changes")):
            change = _dict(change)
            value = _dict(change.get("value"))
            if change.get("field") == "messages":
                _parse_value(value, parsed)
            elif change.get("field") == "smb_message_echoes":
                _parse_echoes(value, parsed)
            elif change.get("field") == "history":
                _parse_history(value, parsed)
                parsed.fields.append(_field_change(entry, change, value))
            elif change.get("field") in FOLLOWED_FIELDS:
                parsed.fields.append(_field_change(entry, change, value))
            else:
                parsed.skipped.append(f"field {change.get('field')!r}")
    return parsed


# Fields other than messages that Kirim applies (inbox.services.business) and passes on.
FOLLOWED_FIELDS = (
    "history", "smb_app_state_sync", "message_template_status_update", "template_category_update",
    "message_template_quality_update", "phone_number_quality_update", "account_update",
)  # fmt: skip


def _field_change(entry, change, value):
    return FieldChange(
        field=str(change["field"]),
        waba_id=str(_dict(entry).get("id") or ""),
        phone_number_id=str(_dict(value.get("metadata")).get("phone_number_id", "")),
        value=value,
        time=_timestamp(_dict(entry).get("time")),
    )


def _change_of(message, phone_number_id, *, by_business):
    """The Change a message of type `edit` or `revoke` is, or None for any other message."""
    kind = message.get("type")
    if kind not in ("edit", "revoke"):
        return None
    content = _dict(message.get(kind))
    return Change(
        phone_number_id=phone_number_id,
        wamid=str(message["id"]),
        original_wamid=str(content.get("original_message_id") or ""),
        kind=kind,
        timestamp=_timestamp(message.get("timestamp")),
        message=_dict(content.get("message")) if kind == "edit" else {},
        by_business=by_business,
    )


def _parse_echoes(value, parsed):
    """`smb_message_echoes`: what staff sent from the WhatsApp Business app, to `to` (the user), whom
    `contacts` describes as for a message the user sent."""
    phone_number_id = str(_dict(value.get("metadata")).get("phone_number_id", ""))
    contacts = [c for c in _list(value.get("contacts")) if isinstance(c, dict)]
    for echo in _list(value.get("message_echoes")):
        if not isinstance(echo, dict) or not echo.get("id"):
            parsed.failed.append({"item": "echo", "reason": "not an object with an `id`"})
            continue
        if change := _change_of(echo, phone_number_id, by_business=True):
            parsed.changes.append(change)
            continue
        to, to_user_id = _text(echo.get("to")), _text(echo.get("to_user_id"))
        contact = next((c for c in contacts if (to and c.get("wa_id") == to) or (to_user_id and c.get("user_id") ==
                        to_user_id)), contacts[0] if len(contacts) == 1 else {})  # fmt: skip
        parsed.past.append(_past(echo, phone_number_id, to or _text(contact.get("wa_id")),
                                 to_user_id or _text(contact.get("user_id")), direction="outbound", status="sent",
                                 field="smb_message_echoes"))  # fmt: skip


# A history message's `history_context.status` as a Kirim status: the app's past chats are read.
HISTORY_STATUS = {"PENDING": "sent", "SENT": "sent", "DELIVERED": "delivered", "READ": "read", "PLAYED": "played",
                  "ERROR": "failed"}  # fmt: skip


def _parse_history(value, parsed):
    """`history`: the app's past chats, in chunks, each thread a user's (its `id`); a message is the
    business's when it is not from that user."""
    phone_number_id = str(_dict(value.get("metadata")).get("phone_number_id", ""))
    for chunk in _list(value.get("history")):
        for thread in _list(_dict(chunk).get("threads")):
            user = _text(_dict(thread).get("id"))
            for message in _list(_dict(thread).get("messages")):
                if not isinstance(message, dict) or not message.get("id") or not user:
                    parsed.failed.append({"item": "history message", "reason": "not an object with an `id`"})
                    continue
                inbound = _text(message.get("from")) == user
                status = "read" if inbound else HISTORY_STATUS.get(
                    str(_dict(message.get("history_context")).get("status", "")).upper(), "sent")  # fmt: skip
                parsed.past.append(_past(message, phone_number_id, user, "", direction="inbound" if inbound
                                         else "outbound", status=status, field="history"))  # fmt: skip


def _past(message, phone_number_id, wa_id, user_id, **how):
    return PastMessage(
        phone_number_id=phone_number_id,
        wamid=str(message["id"]),
        contact_wa_id=wa_id,
        contact_user_id=user_id,
        contact_name="",
        type=str(message.get("type") or "unknown")[:32],
        text=summarize(message),
        timestamp=_timestamp(message.get("timestamp")),
        payload=message,
        **how,
    )


# Longest values the tables hold; longer ones cannot be Meta's and fail their item alone.
WAMID_LENGTH = 255
PHONE_NUMBER_ID_LENGTH = 20
USER_ID_LENGTH = 64
GROUP_ID_LENGTH = 128


def _text(value):
    """A sender's id as Meta writes it, a non-empty string; anything else is no id."""
    return value.strip() if isinstance(value, str) else ""


def _sender(message, contacts):
    """(phone number, business-scoped user id, contact) of a message's sender. `from` holds the number
    when Meta has one; `from_user_id` the BSUID. The contact is matched by either, or is the only one."""
    sender = _text(message.get("from"))
    user_id = _text(message.get("from_user_id"))
    if sender and not sender.isdigit() and not user_id:  # a BSUID ("US.1349…") where the number would be
        sender, user_id = "", sender
    contact = next(
        (c for c in contacts if (sender and c.get("wa_id") == sender) or (user_id and c.get("user_id") == user_id)),
        contacts[0] if len(contacts) == 1 else {},
    )
    return sender or _text(contact.get("wa_id")), user_id or _text(contact.get("user_id")), contact


NO_SENDER = "no sender: neither `from` nor `from_user_id` is a non-empty string, nor does a contact give one"


def _parse_value(value, parsed):
    phone_number_id = str(_dict(value.get("metadata")).get("phone_number_id", ""))
    contacts = [c for c in _list(value.get("contacts")) if isinstance(c, dict)]
    for message in _list(value.get("messages")):
        if not isinstance(message, dict) or not message.get("id"):
            parsed.failed.append({"item": "message", "reason": "not an object with an `id`"})
            continue
        if change := _change_of(message, phone_number_id, by_business=False):
            parsed.changes.append(change)
            continue
        wa_id, user_id, contact = _sender(message, contacts)
        if not (wa_id or user_id):
            parsed.failed.append({"item": f"message {message['id']}", "reason": NO_SENDER})
            continue
        system = _dict(message.get("system"))
        parsed.messages.append(
            InboundMessage(
                phone_number_id=phone_number_id,
                wamid=str(message["id"]),
                contact_wa_id=wa_id,
                contact_user_id=user_id,
                contact_name=str(_dict(contact.get("profile")).get("name", ""))[:200],
                group_id=str(message.get("group_id") or ""),
                new_user_id=str(system.get("user_id") or "") if system.get("type") == "user_changed_user_id" else "",
                type=str(message.get("type") or "unknown")[:32],
                text=summarize(message),
                timestamp=_timestamp(message.get("timestamp")),
                payload=message,
            )
        )
    for status in _list(value.get("statuses")):
        if not isinstance(status, dict) or not status.get("id") or not status.get("status"):
            parsed.failed.append({"item": "status", "reason": "not an object with an `id` and a `status`"})
            continue
        message_id, callback_data = split_callback_data(status.get("biz_opaque_callback_data"))
        parsed.statuses.append(
            StatusUpdate(
                phone_number_id=phone_number_id,
                wamid=str(status["id"]),
                status=str(status["status"]),
                timestamp=_timestamp(status.get("timestamp")),
                errors=status.get("errors"),
                message_id=message_id,
                callback_data=callback_data,
                pricing=status["pricing"] if isinstance(status.get("pricing"), dict) else None,
            )
        )


def _without_our_callback_data(status):
    """A status as its sender gets it from Meta: biz_opaque_callback_data is the value the sender gave
    Kirim, and absent when it gave none (Meta leaves it out then), with Kirim's own id taken out."""
    if "biz_opaque_callback_data" not in status:
        return status
    _, callers_own = split_callback_data(status["biz_opaque_callback_data"])
    if callers_own is None:
        return {k: v for k, v in status.items() if k != "biz_opaque_callback_data"}
    return {**status, "biz_opaque_callback_data": callers_own}  # in its place among Meta's keys


# Where an item names the user it is from or for, and where a contact names its user: a contact
# belongs to the items that name one of its ids (a message's sender, a status's recipient).
ITEM_USER_FIELDS = ("from", "from_user_id", "recipient_id", "recipient_user_id", "recipient_participant_id",
                    "recipient_participant_user_id")  # fmt: skip
CONTACT_USER_FIELDS = ("wa_id", "user_id")


def _ids(item, fields):
    return {str(item[name]) for name in fields if item.get(name)}


def _contacts_kept(contacts, kept, left_out):
    """Meta's contacts, in Meta's order, less those that belong only to items left out (another
    kind's, a message delivered before): a contact Kirim cannot tie to an item is kept."""
    named_by_kept = set().union(*(_ids(item, ITEM_USER_FIELDS) for item in kept))
    named_by_left_out = set().union(*(_ids(item, ITEM_USER_FIELDS) for item in left_out))
    return [
        contact
        for contact in contacts
        if not isinstance(contact, dict)
        or (ids := _ids(contact, CONTACT_USER_FIELDS)) & named_by_kept
        or not ids & named_by_left_out
    ]


def meta_subset(payload, kind, keep):
    """Meta's payload cut down to the `kind` items ("messages" or "statuses") for which
    `keep(phone_number_id, item)` holds: what Meta itself would have sent a subscriber of those items
    alone. Every field Meta sent stays as Meta sent it, fields Kirim does not know included, at every
    level; `contacts` keeps those of the items kept; a status's biz_opaque_callback_data is its
    sender's own. None when no item is left. What an org's subscribers receive."""
    entries = []
    for entry in _list(_dict(payload).get("entry")):
        changes = []
        for change in _list(_dict(entry).get("changes")):
            change = _dict(change)
            value = _dict(change.get("value"))
            if change.get("field") != "messages":
                continue
            phone_number_id = str(_dict(value.get("metadata")).get("phone_number_id", ""))
            items = [i for i in _list(value.get(kind)) if isinstance(i, dict) and keep(phone_number_id, i)]
            if not items:
                continue
            kept = {id(item) for item in items}
            left_out = [
                item
                for other in ("messages", "statuses")
                for item in _list(value.get(other))
                if isinstance(item, dict) and id(item) not in kept
            ]
            subset = {}  # Meta's keys in Meta's order
            for key, field_value in value.items():
                if key == kind:
                    subset[key] = [_without_our_callback_data(i) for i in items] if kind == "statuses" else items
                elif key == "contacts" and left_out:  # else every item is kept, and every contact with it
                    if contacts := _contacts_kept(_list(field_value), items, left_out):
                        subset[key] = contacts
                elif key not in ("messages", "statuses"):
                    subset[key] = field_value
            changes.append({**change, "value": subset})
        if changes:
            entries.append({**entry, "changes": changes})
    return {**payload, "entry": entries} if entries else None


def unstorable_reason(item, suspect=True):
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
    if isinstance(item, InboundMessage):
        for name, attribute, limit in SENDER_ID_LIMITS:
            if len(getattr(item, attribute)) > limit:
                return f"{name} longer than {limit} characters"
        values = [(item.payload, "")]
    else:
        values = [(item.errors, "errors"), (item.status, "status"), (item.pricing, "pricing")]
    return next(filter(None, (_unstorable(value, path) for value, path in values)), None) if suspect else None


def _unstorable(value, path):
    found = find_unstorable(value, path)
    return f"{found.param}: {found.problem}" if found else None


SENDER_ID_LIMITS = (
    ("from", "contact_wa_id", USER_ID_LENGTH),
    ("from_user_id", "contact_user_id", USER_ID_LENGTH),
    ("system.user_id", "new_user_id", USER_ID_LENGTH),
    ("group_id", "group_id", GROUP_ID_LENGTH),
)


# Where a payload carries message objects: `messages` and `message_echoes` in a change's value, and
# `messages` of each history thread.
def without_message(payload, wamid):
    """Meta's payload with message `wamid` and the edits of it taken out, wherever it is: what a
    deletion leaves of a kept webhook or an event not yet delivered. Whether anything was taken out."""
    taken = False

    def kept(items):
        nonlocal taken
        left = [
            item for item in items
            if not (isinstance(item, dict) and (item.get("id") == wamid
                    or _dict(item.get("edit")).get("original_message_id") == wamid))
        ]  # fmt: skip
        taken = taken or len(left) < len(items)
        return left

    for entry in _list(_dict(payload).get("entry")):
        for change in _list(_dict(entry).get("changes")):
            value = _dict(_dict(change).get("value"))
            for key in ("messages", "message_echoes"):
                if isinstance(value.get(key), list):
                    value[key] = kept(value[key])
            for chunk in _list(value.get("history")):
                for thread in _list(_dict(chunk).get("threads")):
                    if isinstance(_dict(thread).get("messages"), list):
                        thread["messages"] = kept(thread["messages"])
    return taken


def has_items(payload):
    """Whether a payload still carries a message, a status or another field's change."""
    for entry in _list(_dict(payload).get("entry")):
        for change in _list(_dict(entry).get("changes")):
            value = _dict(_dict(change).get("value"))
            if _dict(change).get("field") not in ("messages", "smb_message_echoes"):
                return True
            if any(_list(value.get(key)) for key in ("messages", "statuses", "message_echoes")):
                return True
    return False


def field_subset(payload, field, keep_change, keep_echo):
    """Meta's payload cut down to its changes of `field` for which `keep_change(WABA id, the value's
    phone_number_id or "")` holds, each as Meta sent it; of `smb_message_echoes`, only the echoes for
    which `keep_echo(echo)` holds (Meta delivers at least once: those not passed on before). None when
    nothing is left. What an org's subscribers to that field's event type receive."""
    entries = []
    for entry in _list(_dict(payload).get("entry")):
        changes = []
        for change in _list(_dict(entry).get("changes")):
            change = _dict(change)
            value = _dict(change.get("value"))
            number_id = str(_dict(value.get("metadata")).get("phone_number_id", ""))
            if change.get("field") != field or not keep_change(str(_dict(entry).get("id") or ""), number_id):
                continue
            if field == "smb_message_echoes":
                echoes = [e for e in _list(value.get("message_echoes")) if isinstance(e, dict) and keep_echo(e)]
                if not echoes:
                    continue
                value = {**value, "message_echoes": echoes}
            changes.append({**change, "value": value})
        if changes:
            entries.append({**entry, "changes": changes})
    return {**payload, "entry": entries} if entries else None
