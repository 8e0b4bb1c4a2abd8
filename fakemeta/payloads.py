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
