"""Sends through POST /v1/{phone_number_id}/messages, and Meta accepting them, for the tests of sending."""

from testing.meta import graph_messages_url

TO = "6281234567890"


def text_body(text="Halo!", **extra):
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, "type": "text",
            "text": {"body": text}, **extra}  # fmt: skip


def send(api, phone_number, body, **headers):
    return api.post(f"/v1/{phone_number.phone_number_id}/messages", body, format="json", **headers)


def meta_accepts_sends(meta, phone_number, wamid="wamid.SENT1"):
    meta.post(
        graph_messages_url(phone_number),
        json={"messaging_product": "whatsapp", "contacts": [{"input": TO, "wa_id": TO}], "messages": [{"id": wamid}]},
    )
