"""Meta's webhook payload, normalized into small events: inbound messages and status updates.

Parsing is forgiving: whatever does not have the shape of an event is skipped and reported, never
raised, because a well-signed payload is acknowledged whatever it holds."""

import datetime
from dataclasses import dataclass, field

from django.utils import timezone


@dataclass(frozen=True)
class InboundMessage:
    phone_number_id: str
    wamid: str
    contact_wa_id: str
    contact_name: str
    type: str
    text: str
    timestamp: datetime.datetime
    payload: dict


@dataclass(frozen=True)
class StatusUpdate:
    phone_number_id: str
    wamid: str
    status: str
    timestamp: datetime.datetime
    errors: list | None = None


@dataclass
class ParsedWebhook:
    messages: list = field(default_factory=list)
    statuses: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # human-readable reasons, for the log


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


def parse(payload):
    parsed = ParsedWebhook()
    payload = _without_nul(payload)
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        parsed.skipped.append("not a whatsapp_business_account payload")
        return parsed
    for entry in _list(payload.get("entry")):
        for change in _list(_dict(entry).get("changes")):
            change = _dict(change)
            if change.get("field") != "messages":
                parsed.skipped.append(f"field {change.get('field')!r}")
                continue
            _parse_value(_dict(change.get("value")), parsed)
    return parsed


def _parse_value(value, parsed):
    phone_number_id = str(_dict(value.get("metadata")).get("phone_number_id", ""))
    names = {
        str(c.get("wa_id")): str(_dict(c.get("profile")).get("name", ""))
        for c in _list(value.get("contacts"))
        if isinstance(c, dict)
    }
    for message in _list(value.get("messages")):
        if not isinstance(message, dict) or not message.get("id") or not message.get("from"):
            parsed.skipped.append("message without id or from")
            continue
        sender = str(message["from"])
        parsed.messages.append(
            InboundMessage(
                phone_number_id=phone_number_id,
                wamid=str(message["id"])[:255],
                contact_wa_id=sender[:32],
                contact_name=names.get(sender, "")[:200],
                type=str(message.get("type") or "unknown")[:32],
                text=summarize(message),
                timestamp=_timestamp(message.get("timestamp")),
                payload=message,
            )
        )
    for status in _list(value.get("statuses")):
        if not isinstance(status, dict) or not status.get("id") or not status.get("status"):
            parsed.skipped.append("status without id or status")
            continue
        parsed.statuses.append(
            StatusUpdate(
                phone_number_id=phone_number_id,
                wamid=str(status["id"]),
                status=str(status["status"]),
                timestamp=_timestamp(status.get("timestamp")),
                errors=status.get("errors"),
            )
        )


def meta_subset(payload, kind, keep):
    """Meta's payload cut down to the `kind` items ("messages" or "statuses") for which
    `keep(phone_number_id, item)` holds, in Meta's own shape and with Meta's values (a message keeps
    its sender's `contacts` entry); None when no item is left. What an org's subscribers receive."""
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
            subset = {k: v for k, v in value.items() if k not in ("contacts", "messages", "statuses")}
            if kind == "messages":
                senders = {str(i.get("from")) for i in items}
                contacts = [c for c in _list(value.get("contacts")) if str(_dict(c).get("wa_id")) in senders]
                if contacts:
                    subset["contacts"] = contacts
            subset[kind] = items
            changes.append({**change, "value": subset})
        if changes:
            entries.append({**entry, "changes": changes})
    return {**payload, "entry": entries} if entries else None
