"""Webhook payloads shaped as Meta sends them, and their signature. Shared by the stand-in, the demo
seed and the tests, so all three speak exactly one version of Meta's format."""

import hashlib
import hmac
import json
import time


def sign(raw_body, app_secret):
    """The X-Hub-Signature-256 header Meta sends: HMAC-SHA256 of the raw body keyed with the app secret."""
    return "sha256=" + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()


def encode(payload):
    return json.dumps(payload, separators=(",", ":")).encode()


def webhook(phone_number_id, *, display_phone_number="", messages=(), statuses=(), contacts=(), waba_id="0"):
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id},
    }
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


def contact(wa_id, name):
    return {"profile": {"name": name}, "wa_id": wa_id}


def text_message(wamid, from_wa_id, body, *, timestamp=None):
    return {
        "from": from_wa_id,
        "id": wamid,
        "timestamp": str(int(timestamp or time.time())),
        "text": {"body": body},
        "type": "text",
    }


def status(wamid, value, recipient_id, *, timestamp=None, errors=None, biz_opaque_callback_data=None):
    entry = {
        "id": wamid,
        "status": value,
        "timestamp": str(int(timestamp or time.time())),
        "recipient_id": recipient_id,
    }
    if errors:
        entry["errors"] = errors
    if biz_opaque_callback_data:  # the send's own, echoed by Meta
        entry["biz_opaque_callback_data"] = biz_opaque_callback_data
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
