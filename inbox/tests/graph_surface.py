"""Requests to Meta's own API at Kirim (/{version}/...) and the answers Meta gives, for the tests of
that surface."""

from django.conf import settings

SEND = {"messaging_product": "whatsapp", "to": "+62 812-3456-7801", "type": "text", "text": {"body": "Halo"}}
META_SENT = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": "+62 812-3456-7801", "wa_id": "6281234567801"}],
    "messages": [{"id": "wamid.SENT1"}],
}
META_REFUSAL = {
    "message": "(#131047) Re-engagement message",
    "type": "OAuthException",
    "code": 131047,
    "error_subcode": 2494010,
    "error_data": {"messaging_product": "whatsapp", "details": "More than 24 hours have passed"},
    "fbtrace_id": "AMetaTraceId",
}


def messages_url(phone_number, version="v23.0"):
    return f"/{version}/{phone_number.phone_number_id}/messages"


def read_body(wamid, **extra):
    return {"messaging_product": "whatsapp", "status": "read", "message_id": wamid, **extra}


def assert_meta_error(response, status, code, subcode=None):
    """Meta's error shape exactly: an int code, error_data, a trace id; Kirim's own trace is its request id."""
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) <= {"message", "type", "code", "error_subcode", "error_data", "fbtrace_id", "is_transient"}
    assert error["code"] == code and isinstance(error["code"], int)
    assert error.get("error_subcode") == subcode
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert isinstance(error["message"], str) and error["fbtrace_id"]
    return error


WABA_ID = "102290129340398"
TEMPLATE = {"name": "order_shipped", "language": "en_US", "status": "APPROVED", "category": "UTILITY", "id": "9"}


def meta_templates_url():
    return f"{settings.META_GRAPH_URL}/{WABA_ID}/message_templates"
