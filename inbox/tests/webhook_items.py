"""Meta webhooks of three good messages and one item that cannot be stored, each with where and why
it fails."""

import json

from fakemeta import payloads

PHONE_NUMBER_ID = "106540352242922"  # the `phone_number` fixture's


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
