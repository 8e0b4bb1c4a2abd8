"""Webhook payloads shaped as Meta sends them in 2026, and their signature. Shared by the stand-in,
the demo seed and the tests, so all three speak exactly one version of Meta's format: business-scoped
user ids beside numbers (`user_id` on contacts, `from_user_id` on messages, `recipient_user_id` on
statuses), the recipient's `contacts` in status webhooks, and per-message `pricing` on statuses."""

import hashlib
import hmac
import json
import time


def sign(raw_body, app_secret):
    """The X-Hub-Signature-256 header Meta sends: HMAC-SHA256 of the raw body keyed with the app secret."""
    return "sha256=" + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()


def encode(payload):
    """Meta's bytes: compact JSON, non-ASCII as lowercase \\uXXXX escapes, `/` escaped as `\\/`."""
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()


def webhook(phone_number_id, *, display_phone_number="", messages=(), statuses=(), contacts=(), waba_id="0"):
    """One change of field `messages`. A status webhook's `contacts` are its recipients unless given."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id},
    }
    if statuses and not contacts:
        recipients = dict.fromkeys(s["recipient_id"] for s in statuses if isinstance(s, dict) and "recipient_id" in s)
        contacts = [recipient(wa_id) for wa_id in recipients]
    if contacts:
        value["contacts"] = list(contacts)
    if messages:
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": [{"value": value, "field": "messages"}]}],
    }


# A few calling codes' countries, for the user ids' prefix; the stand-in's users are mostly Indonesian.
COUNTRY_OF_CALLING_CODE = {"62": "ID", "60": "MY", "65": "SG", "44": "GB", "1": "US"}


def user_id_of(wa_id):
    """The business-scoped user id Meta gives the user of number `wa_id`: the number's country, a dot,
    digits. Made up, but the same for the same number, as Meta's is for one business. A user id is
    its own."""
    if not wa_id.isdigit():
        return wa_id
    country = next((c for code, c in COUNTRY_OF_CALLING_CODE.items() if wa_id.startswith(code)), "US")
    return f"{country}.{int.from_bytes(hashlib.sha256(wa_id.encode()).digest()[:8], 'big'):020d}"


def contact(wa_id, name):
    """A message's sender, as Meta describes it beside the message."""
    return {"profile": {"name": name}, "wa_id": wa_id, "user_id": user_id_of(wa_id)}


def recipient(wa_id):
    """A status's recipient, as Meta describes it beside the status."""
    return {"wa_id": wa_id, "user_id": user_id_of(wa_id)}


def text_message(wamid, from_wa_id, body, *, timestamp=None):
    return {
        "from": from_wa_id,
        "from_user_id": user_id_of(from_wa_id),
        "id": wamid,
        "timestamp": str(int(timestamp or time.time())),
        "text": {"body": body},
        "type": "text",
    }


def media_message(wamid, from_wa_id, kind, media_id, *, mime_type, timestamp=None, **extra):
    """An inbound image, sticker, audio (`voice: True` for a voice note), video or document, as Meta
    sends it: the media's id to fetch it by, its type and hash, and `caption`/`filename` as given."""
    message = text_message(wamid, from_wa_id, "", timestamp=timestamp)
    del message["text"]
    message["type"] = kind
    message[kind] = {"id": media_id, "mime_type": mime_type, "sha256": "0" * 44, **extra}
    return message


def pricing(category="service"):
    """Meta's per-message pricing of a send: a message inside the customer service window is free
    (`service`), a template is charged at its category's rate (`marketing`, `utility`, `authentication`)."""
    free = category == "service"
    return {
        "billable": not free,
        "pricing_model": "PMP",
        "category": category,
        "type": "free_customer_service" if free else "regular",
    }


def status(wamid, value, recipient_id, *, timestamp=None, errors=None, biz_opaque_callback_data=None,
           category="service"):  # fmt: skip
    """A status of a send to `recipient_id`; `sent` and `delivered` carry its pricing, as Meta's do."""
    entry = {
        "id": wamid,
        "status": value,
        "timestamp": str(int(timestamp or time.time())),
        "recipient_id": recipient_id,
        "recipient_user_id": user_id_of(recipient_id),
    }
    if biz_opaque_callback_data:  # the send's own, echoed by Meta
        entry["biz_opaque_callback_data"] = biz_opaque_callback_data
    if value in ("sent", "delivered"):
        entry["pricing"] = pricing(category)
    if errors:
        entry["errors"] = errors
    return entry


# What the stand-in's GET /{waba_id}/message_templates answers until told otherwise: Meta's shapes.
DEMO_TEMPLATES = (
    {
        "id": "1000000000000001",
        "name": "order_update",
        "language": "en_US",
        "status": "APPROVED",
        "category": "UTILITY",
        "parameter_format": "POSITIONAL",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
            {"type": "BODY", "text": "Hi {{1}}, your order {{2}} is on its way."},
            {"type": "FOOTER", "text": "Demo Coffee"},
        ],
    },
    {
        "id": "1000000000000002",
        "name": "follow_up",
        "language": "id",
        "status": "APPROVED",
        "category": "MARKETING",
        "parameter_format": "NAMED",
        "components": [{"type": "BODY", "text": "Halo {{customer_name}}, ada yang bisa kami bantu lagi?"}],
    },
    {
        "id": "1000000000000003",
        "name": "promo_image",
        "language": "en_US",
        "status": "APPROVED",
        "category": "MARKETING",
        "parameter_format": "POSITIONAL",
        "components": [{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "New beans are in!"}],
    },
    {
        "id": "1000000000000004",
        "name": "welcome_draft",
        "language": "en_US",
        "status": "PENDING",
        "category": "UTILITY",
        "parameter_format": "POSITIONAL",
        "components": [{"type": "BODY", "text": "Welcome!"}],
    },
)


def field_change(field, value, *, waba_id="0", phone_number_id=None, display_phone_number=""):
    """One change of webhook field `field`; a number's fields carry its `metadata`, as Meta's do."""
    if phone_number_id is not None:
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id},
            **value,
        }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "time": int(time.time()), "changes": [{"value": value, "field": field}]}],
    }


def echoes(*items, name=""):
    """The value of an `smb_message_echoes` change: the echoes and, as for messages, their user's contact."""
    users = dict.fromkeys(str(item.get("to")) for item in items if item.get("to"))
    return {"contacts": [contact(wa_id, name) for wa_id in users], "message_echoes": list(items)}


def echo(wamid, to_wa_id, body, *, business_number, timestamp=None):
    """A text staff sent from the WhatsApp Business app on the same number (`smb_message_echoes`)."""
    return {
        "from": business_number,
        "to": to_wa_id,
        "id": wamid,
        "timestamp": str(int(timestamp or time.time())),
        "type": "text",
        "text": {"body": body},
    }


def edit(wamid, original_wamid, body, *, timestamp=None, **sender):
    """A message's edit (`type: edit`): the original's id and its new content. `sender`: `from` (the
    user's) in `messages`, `from` and `to` in `smb_message_echoes`."""
    return {
        **sender,
        "id": wamid,
        "timestamp": str(int(timestamp or time.time())),
        "type": "edit",
        "edit": {"original_message_id": original_wamid, "message": {"type": "text", "text": {"body": body}}},
    }


def revoke(wamid, original_wamid, *, timestamp=None, **sender):
    """A message's deletion for everyone (`type: revoke`)."""
    return {
        **sender,
        "id": wamid,
        "timestamp": str(int(timestamp or time.time())),
        "type": "revoke",
        "revoke": {"original_message_id": original_wamid},
    }


def history_chunk(threads, *, phase=0, chunk_order=1, progress=100):
    """One chunk of the app's chat history: {user's wa_id: [messages]}, each message's `from` the user
    or the business, with the app's `history_context.status`."""
    return {
        "metadata": {"phase": phase, "chunk_order": chunk_order, "progress": progress},
        "threads": [{"id": wa_id, "messages": messages} for wa_id, messages in threads.items()],
    }


def history_message(wamid, from_number, body, *, timestamp, status="READ"):
    return {
        "from": from_number,
        "id": wamid,
        "timestamp": str(int(timestamp)),
        "type": "text",
        "text": {"body": body},
        "history_context": {"status": status},
    }


def state_sync_contact(phone_number, full_name, *, action="add", first_name=None):
    """A contact of the WhatsApp Business app, added (or edited) or removed (`smb_app_state_sync`)."""
    return {
        "type": "contact",
        "contact": {"full_name": full_name, "first_name": first_name or full_name.split()[0],
                    "phone_number": phone_number},
        "action": action,
        "metadata": {"timestamp": str(int(time.time()))},
    }  # fmt: skip


def template_status(template, event, *, reason="NONE", **more):
    """`message_template_status_update` of a template (Meta's object: id, name, language, category)."""
    return {
        "event": event,
        "message_template_id": int(template["id"]),
        "message_template_name": template["name"],
        "message_template_language": template["language"],
        "message_template_category": template.get("category", ""),
        "reason": reason,
        **more,
    }


def template_category(template, new_category):
    return {
        "message_template_id": int(template["id"]),
        "message_template_name": template["name"],
        "message_template_language": template["language"],
        "previous_category": template.get("category", ""),
        "new_category": new_category,
    }


def template_quality(template, new_score, previous_score="GREEN"):
    return {
        "previous_quality_score": previous_score,
        "new_quality_score": new_score,
        "message_template_id": int(template["id"]),
        "message_template_name": template["name"],
        "message_template_language": template["language"],
    }


def number_quality(display_phone_number, event, current_limit):
    """`phone_number_quality_update`: the number's quality event and its messaging limit tier."""
    return {"display_phone_number": display_phone_number, "event": event, "current_limit": current_limit}


def account_update(event, **more):
    """`account_update`: e.g. VERIFIED_ACCOUNT, ACCOUNT_VIOLATION (with `violation_info`), DISABLED_UPDATE."""
    return {"event": event, **more}
