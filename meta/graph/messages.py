"""Messages: a send, and a read receipt (with the typing bubble)."""

from dataclasses import dataclass

from django.conf import settings

from meta.graph.client import Json, PhoneNumber, auth_headers, first, graph_call, session, upstream_error


def post_messages(phone_number: PhoneNumber, payload: Json, *, idempotent: bool, operation: str) -> Json:
    """POST /{phone_number_id}/messages with the number's token; Meta's JSON answer, or UpstreamError."""
    url = f"{settings.META_GRAPH_URL}/{phone_number.phone_number_id}/messages"
    return graph_call(
        lambda timeout: session.post(url, json=payload, headers=auth_headers(phone_number), timeout=timeout),
        idempotent=idempotent,
        operation=operation,
    )


def mark_read(phone_number: PhoneNumber, wamid: str, *, typing: bool = False) -> None:
    """Send a read receipt (and optionally a typing bubble) for an inbound message."""
    payload: Json = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
    if typing:
        payload["typing_indicator"] = {"type": "text"}
    body = post_messages(phone_number, payload, idempotent=True, operation="mark_read")  # reading twice changes nothing
    if body.get("success") is not True:
        raise upstream_error("Meta did not confirm the read receipt.", http_status=200)


@dataclass(frozen=True)
class Accepted:
    wamid: str
    wa_id: str | None  # Meta's normalized form of `to`, which inbound webhooks use as `from`
    message_status: str | None = None  # template pacing (`accepted`, `held_for_quality_assessment`), when given
    user_id: str | None = None  # the recipient's business-scoped user id, when Meta answers one


def send_message(phone_number: PhoneNumber, body: Json) -> Accepted:
    """Send a message (the body is the client's, passed through); what Meta answered for it."""
    answer = post_messages(phone_number, body, idempotent=False, operation="send_message")
    sent = first(answer.get("messages"))
    wamid = sent.get("id")
    if not isinstance(wamid, str) or not wamid:
        raise upstream_error("Meta's answer had no message id.", http_status=200)
    contact = first(answer.get("contacts"))
    wa_id, user_id = contact.get("wa_id"), contact.get("user_id")
    message_status = sent.get("message_status")
    return Accepted(
        user_id=str(user_id)[:64] if user_id else None,
        wamid=wamid[:255],
        wa_id=str(wa_id)[:32] if wa_id else None,
        # Meta's values are short words: anything else is not Meta's pacing status, and is not passed on.
        message_status=message_status if isinstance(message_status, str) and len(message_status) <= 64 else None,
    )
