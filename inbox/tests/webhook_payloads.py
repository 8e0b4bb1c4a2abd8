"""Meta webhooks for the tests of webhooks in: shaped as the examples of Meta's webhook reference, and
of three good messages and one item that cannot be stored (each with where and why it fails)."""

import json

from conftest import PHONE_NUMBER_ID
from fakemeta import payloads

CUSTOMER = "16315551181"


def meta_payload(value):
    """The envelope of Meta's documented examples around one `value`."""
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }


def inbound_value(message, name="Kerry Fisher"):
    return {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": name}, "wa_id": CUSTOMER}],
        "messages": [message],
    }


def statuses_value(*statuses):
    return {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
        "statuses": list(statuses),
    }


def documented_status(wamid, value, **extra):
    status = {
        "id": wamid, "status": value, "timestamp": "1750263773", "recipient_id": CUSTOMER,
        "pricing": {"billable": True, "pricing_model": "PMP", "category": "utility"},
    }  # fmt: skip
    if value in ("sent", "delivered"):
        status["conversation"] = {"id": "c0a1b2", "origin": {"type": "utility"}}
    return {**status, **extra}


def good_messages(count=3):
    return [payloads.text_message(f"wamid.GOOD{n}", f"6281200000{n:02d}", f"good {n}") for n in range(count)]


def signed_body_with(bad_message=None, bad_status_change=None):
    """A Meta webhook, as raw JSON text, with three good messages and one bad item."""
    messages = good_messages()
    if bad_message is not None:
        messages.insert(1, bad_message)
    payload = payloads.webhook(PHONE_NUMBER_ID, messages=messages, contacts=[payloads.contact("6281200000", "Ana")])
    if bad_status_change is not None:
        payload["entry"][0]["changes"].append({"field": "messages", "value": bad_status_change})
    return json.dumps(payload)


BAD_ITEMS = {
    # `1e999` parses as Python's infinity, which PostgreSQL's JSON refuses.
    "number-out-of-range": (
        signed_body_with(
            {"from": "628129", "id": "wamid.BAD", "timestamp": "1", "type": "location",
             "location": {"latitude": "__INF__", "longitude": 1}}
        ).replace('"__INF__"', "1e999"),
        "message wamid.BAD",
        "location.latitude: is not a finite number",
    ),
    # json.dumps escapes it as \ud800: a lone UTF-16 surrogate, which UTF-8 cannot encode.
    "lone-surrogate": (
        signed_body_with(payloads.text_message("wamid.BAD", "628129", "hi \ud800 there")),
        "message wamid.BAD",
        "text.body: contains a lone UTF-16 surrogate",
    ),
    "long-phone-number-id": (
        signed_body_with(bad_status_change={
            "messaging_product": "whatsapp", "metadata": {"phone_number_id": "1" * 25},
            "statuses": [payloads.status("wamid.SOMEONES", "delivered", "628129")],
        }),
        "status 'delivered' of wamid.SOMEONES",
        "metadata.phone_number_id longer than 20 characters",
    ),
}  # fmt: skip
