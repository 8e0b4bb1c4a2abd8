"""Meta's webhook payload, normalized into small events: inbound messages and status updates.

Parsing is forgiving, never raising, because a well-signed payload is acknowledged whatever it holds:
a message or status that cannot be used is a failed item with its reason (recorded on the event),
and what is not an item at all (another field, a body that is not Meta's) is skipped and logged."""

from collections.abc import Iterator
from typing import Any

from meta.payloads.callback import split_callback_data
from meta.payloads.events import (
    Change,
    FieldChange,
    InboundMessage,
    Json,
    ParsedWebhook,
    PastMessage,
    StatusUpdate,
)
from meta.payloads.shapes import as_dict, as_list, id_text, number_of, timestamp_of

# Fields other than messages that Kirim applies (inbox.services.business) and passes on.
FOLLOWED_FIELDS = (
    "history", "smb_app_state_sync", "message_template_status_update", "template_category_update",
    "message_template_quality_update", "phone_number_quality_update", "account_update",
)  # fmt: skip


def parse(payload: object, suspect: bool = True) -> ParsedWebhook:
    """`payload` as events; `suspect` unless core.parsers.loads_noting_unstorable found it clean."""
    parsed = ParsedWebhook(suspect=suspect)
    if parsed.suspect:
        payload = _without_nul(payload)
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        parsed.skipped.append("not a whatsapp_business_account payload")
        return parsed
    for entry in as_list(payload.get("entry")):
        for change in as_list(as_dict(entry).get("changes")):
            change = as_dict(change)
            value = as_dict(change.get("value"))
            if change.get("field") == "messages":
                _parse_messages(value, parsed)
                _parse_statuses(value, parsed)
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


def summarize(message: Json) -> str:
    """A short text for the inbox: the body, caption, choice or a description of the content."""
    kind = message.get("type")
    content = _content(message, kind)
    if kind == "text":
        return str(content.get("body", ""))
    if kind in ("image", "video", "document", "audio", "sticker"):
        return str(content.get("caption") or content.get("filename") or "")
    if kind == "location":
        parts = [content.get("name"), content.get("address")]
        return ", ".join(str(p) for p in parts if p) or f"{content.get('latitude')}, {content.get('longitude')}"
    if kind == "contacts":
        names = [
            as_dict(c.get("name")).get("formatted_name", "")
            for c in as_list(message.get("contacts"))
            if isinstance(c, dict)
        ]
        return ", ".join(n for n in names if n)
    if kind == "interactive":
        reply = _content(content, content.get("type"))
        return str(reply.get("title", ""))
    if kind == "button":
        return str(content.get("text", ""))
    if kind == "reaction":
        return str(content.get("emoji", ""))
    if kind == "template":
        return str(content.get("name", ""))
    return ""


def _content(holder: Json, kind: object) -> Json:
    """What a message (or an interactive reply) of type `kind` holds under that key, or {}."""
    return as_dict(holder.get(kind)) if isinstance(kind, str) else {}


def _without_nul(value: Any) -> Any:
    """PostgreSQL stores no NUL character in text or JSON; Meta's content should carry none."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def _field_change(entry: object, change: Json, value: Json) -> FieldChange:
    return FieldChange(
        field=str(change["field"]),
        waba_id=str(as_dict(entry).get("id") or ""),
        phone_number_id=number_of(value),
        value=value,
        time=timestamp_of(as_dict(entry).get("time")),
    )


NO_SENDER = "no sender: neither `from` nor `from_user_id` is a non-empty string, nor does a contact give one"


def _parse_messages(value: Json, parsed: ParsedWebhook) -> None:
    """`messages`: what users sent the number. A message whose sender Kirim cannot tell fails."""
    phone_number_id, contacts = number_of(value), _contacts(value)
    for message in _new_messages(value.get("messages"), phone_number_id, parsed, item="message", by_business=False):
        wa_id, user_id = _sender(message)
        contact = _contact(contacts, wa_id, user_id)
        wa_id, user_id = wa_id or id_text(contact.get("wa_id")), user_id or id_text(contact.get("user_id"))
        if not (wa_id or user_id):
            parsed.failed.append({"item": f"message {message['id']}", "reason": NO_SENDER})
            continue
        system = as_dict(message.get("system"))
        parsed.messages.append(
            InboundMessage(
                phone_number_id=phone_number_id,
                wamid=str(message["id"]),
                contact_wa_id=wa_id,
                contact_user_id=user_id,
                contact_name=str(as_dict(contact.get("profile")).get("name", ""))[:200],
                group_id=str(message.get("group_id") or ""),
                new_user_id=str(system.get("user_id") or "") if system.get("type") == "user_changed_user_id" else "",
                type=str(message.get("type") or "unknown")[:32],
                text=summarize(message),
                timestamp=timestamp_of(message.get("timestamp")),
                payload=message,
            )
        )


def _parse_echoes(value: Json, parsed: ParsedWebhook) -> None:
    """`smb_message_echoes`: what staff sent from the WhatsApp Business app, to `to` (the user), whom
    `contacts` describes as for a message the user sent."""
    phone_number_id, contacts = number_of(value), _contacts(value)
    for echo in _new_messages(value.get("message_echoes"), phone_number_id, parsed, item="echo", by_business=True):
        to, to_user_id = id_text(echo.get("to")), id_text(echo.get("to_user_id"))
        contact = _contact(contacts, to, to_user_id)
        parsed.past.append(_past(echo, phone_number_id, to or id_text(contact.get("wa_id")),
                                 to_user_id or id_text(contact.get("user_id")), direction="outbound", status="sent",
                                 field="smb_message_echoes"))  # fmt: skip


def _new_messages(
    messages: object, phone_number_id: str, parsed: ParsedWebhook, *, item: str, by_business: bool
) -> Iterator[Json]:
    """The message objects of `messages` (a user's or an echo's) that are messages of their own, in
    Meta's order: one that is no object with an id fails; an edit or a deletion of another is a Change.

    The caller takes each one as it comes (its own failures, a message without a sender, fall in among
    these in Meta's order) and names the number itself: `phone_number_id` is the change's, given,
    never taken from what this yields, as a change holding statuses alone yields nothing."""
    for message in as_list(messages):
        if not isinstance(message, dict) or not message.get("id"):
            parsed.failed.append({"item": item, "reason": "not an object with an `id`"})
        elif change := _change_of(message, phone_number_id, by_business=by_business):
            parsed.changes.append(change)
        else:
            yield message


def _change_of(message: Json, phone_number_id: str, *, by_business: bool) -> Change | None:
    """The Change a message of type `edit` or `revoke` is, or None for any other message."""
    kind = message.get("type")
    if kind not in ("edit", "revoke"):
        return None
    content = as_dict(message.get(kind))
    return Change(
        phone_number_id=phone_number_id,
        wamid=str(message["id"]),
        original_wamid=str(content.get("original_message_id") or ""),
        kind=str(kind),
        timestamp=timestamp_of(message.get("timestamp")),
        message=as_dict(content.get("message")) if kind == "edit" else {},
        by_business=by_business,
    )


def _contacts(value: Json) -> list[Json]:
    return [c for c in as_list(value.get("contacts")) if isinstance(c, dict)]


def _contact(contacts: list[Json], wa_id: str, user_id: str) -> Json:
    """The contact a message is from or for, matched by number or business-scoped user id, or the only
    one there is; {} when none matches."""
    return next(
        (c for c in contacts if (wa_id and c.get("wa_id") == wa_id) or (user_id and c.get("user_id") == user_id)),
        contacts[0] if len(contacts) == 1 else {},
    )


def _sender(message: Json) -> tuple[str, str]:
    """(phone number, business-scoped user id) a message names its sender by, either "": `from` holds
    the number when Meta has one, `from_user_id` the BSUID."""
    sender = id_text(message.get("from"))
    user_id = id_text(message.get("from_user_id"))
    if sender and not sender.isdigit() and not user_id:  # a BSUID ("US.1349…") where the number would be
        return "", sender
    return sender, user_id


# A history message's `history_context.status` as a Kirim status: the app's past chats are read.
HISTORY_STATUS = {"PENDING": "sent", "SENT": "sent", "DELIVERED": "delivered", "READ": "read", "PLAYED": "played",
                  "ERROR": "failed"}  # fmt: skip


def _parse_history(value: Json, parsed: ParsedWebhook) -> None:
    """`history`: the app's past chats, in chunks, each thread a user's (its `id`); a message is the
    business's when it is not from that user."""
    phone_number_id = number_of(value)
    for chunk in as_list(value.get("history")):
        for thread in as_list(as_dict(chunk).get("threads")):
            user = id_text(as_dict(thread).get("id"))
            for message in as_list(as_dict(thread).get("messages")):
                if not isinstance(message, dict) or not message.get("id") or not user:
                    parsed.failed.append({"item": "history message", "reason": "not an object with an `id`"})
                    continue
                inbound = id_text(message.get("from")) == user
                status = "read" if inbound else HISTORY_STATUS.get(
                    str(as_dict(message.get("history_context")).get("status", "")).upper(), "sent")  # fmt: skip
                parsed.past.append(_past(message, phone_number_id, user, "", direction="inbound" if inbound
                                         else "outbound", status=status, field="history"))  # fmt: skip


def _past(
    message: Json, phone_number_id: str, wa_id: str, user_id: str, *, direction: str, status: str, field: str
) -> PastMessage:
    return PastMessage(
        phone_number_id=phone_number_id,
        wamid=str(message["id"]),
        contact_wa_id=wa_id,
        contact_user_id=user_id,
        contact_name="",
        type=str(message.get("type") or "unknown")[:32],
        text=summarize(message),
        timestamp=timestamp_of(message.get("timestamp")),
        payload=message,
        direction=direction,
        status=status,
        field=field,
    )


def _parse_statuses(value: Json, parsed: ParsedWebhook) -> None:
    phone_number_id = number_of(value)
    for status in as_list(value.get("statuses")):
        if not isinstance(status, dict) or not status.get("id") or not status.get("status"):
            parsed.failed.append({"item": "status", "reason": "not an object with an `id` and a `status`"})
            continue
        message_id, callback_data = split_callback_data(status.get("biz_opaque_callback_data"))
        parsed.statuses.append(
            StatusUpdate(
                phone_number_id=phone_number_id,
                wamid=str(status["id"]),
                status=str(status["status"]),
                timestamp=timestamp_of(status.get("timestamp")),
                errors=status.get("errors"),
                message_id=message_id,
                callback_data=callback_data,
                pricing=status["pricing"] if isinstance(status.get("pricing"), dict) else None,
            )
        )
