"""The one module that talks to Meta's Graph API. Everything else calls the functions here."""

from dataclasses import dataclass

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from kirim.errors import UpstreamError

# One pooled session per process: keep-alive connections to Meta are reused across requests.
_session = requests.Session()
_session.mount("https://", HTTPAdapter(pool_connections=4, pool_maxsize=32))
_session.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=32))


def _upstream_error(message, *, http_status=None, error=None):
    """UpstreamError carrying what Meta said (code, message, fbtrace_id, HTTP status) in `upstream`."""
    error = error if isinstance(error, dict) else {}
    error_data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
    upstream = {
        "http_status": http_status,
        "code": error.get("code"),
        "message": error.get("message") or message,
        "fbtrace_id": error.get("fbtrace_id"),
    }
    if error_data.get("details"):
        upstream["details"] = error_data["details"]
    return UpstreamError(f"WhatsApp's Cloud API: {upstream['message']}", upstream=upstream)


def post_messages(phone_number, payload):
    """POST /{phone_number_id}/messages with the number's token; Meta's JSON answer, or UpstreamError."""
    try:
        response = _session.post(
            f"{settings.META_GRAPH_URL}/{phone_number.phone_number_id}/messages",
            json=payload,
            headers={"Authorization": f"Bearer {phone_number.access_token}"},
            timeout=settings.META_TIMEOUT,
        )
    except requests.Timeout:
        raise _upstream_error("Meta did not answer in time.") from None
    except requests.RequestException:
        raise _upstream_error("Meta could not be reached.") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _upstream_error("Meta's answer was not JSON.", http_status=response.status_code)
    if response.status_code >= 400 or "error" in body:
        raise _upstream_error(
            f"Meta answered HTTP {response.status_code}.",
            http_status=response.status_code,
            error=body.get("error"),
        )
    return body


def mark_read(phone_number, wamid, *, typing=False):
    """Send a read receipt (and optionally a typing bubble) for an inbound message."""
    payload = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
    if typing:
        payload["typing_indicator"] = {"type": "text"}
    body = post_messages(phone_number, payload)
    if body.get("success") is not True:
        raise _upstream_error("Meta did not confirm the read receipt.", http_status=200)


@dataclass(frozen=True)
class Accepted:
    wamid: str
    wa_id: str | None  # Meta's normalized form of `to`, which inbound webhooks use as `from`


def send_message(phone_number, body):
    """Send a message (the body is the client's, passed through); Meta's wamid for it."""
    answer = post_messages(phone_number, body)
    messages = answer.get("messages")
    wamid = messages[0].get("id") if isinstance(messages, list) and messages and isinstance(messages[0], dict) else None
    if not isinstance(wamid, str) or not wamid:
        raise _upstream_error("Meta's answer had no message id.", http_status=200)
    contacts = answer.get("contacts")
    wa_id = (
        contacts[0].get("wa_id") if isinstance(contacts, list) and contacts and isinstance(contacts[0], dict) else None
    )
    return Accepted(wamid=wamid[:255], wa_id=str(wa_id)[:32] if wa_id else None)
