"""A business number: what Meta says of it, whether its WABA lists it, and the users it blocks."""

from django.conf import settings

from core.errors import UpstreamError
from meta.graph.client import Json, PhoneNumber, auth_headers, graph_call, json_list, json_object, session

# What Kirim reads of a business number. Meta answers only with a token that can act for the number
# (else code 100, subcode 33: "does not exist, cannot be loaded due to missing permissions").
NUMBER_FIELDS = "id,display_phone_number,verified_name"
WABA_NUMBERS_PAGE, WABA_NUMBERS_PAGES = 100, 10  # a WABA has a few numbers: ten pages is far beyond any


def phone_number_fields(phone_number: PhoneNumber) -> Json:
    """Meta's description of a number (id, display_phone_number, verified_name), read with its token;
    `phone_number` need not be saved (connecting one asks this first)."""
    url = f"{settings.META_GRAPH_URL}/{phone_number.phone_number_id}"
    return graph_call(
        lambda timeout: session.get(
            url, params={"fields": NUMBER_FIELDS}, headers=auth_headers(phone_number), timeout=timeout
        ),
        idempotent=True,
        operation="phone_number_fields",
    )


def waba_lists_phone_number(phone_number: PhoneNumber) -> bool:
    """Whether GET /{waba_id}/phone_numbers, read with the number's token, lists the number."""
    url = f"{settings.META_GRAPH_URL}/{phone_number.waba_id}/phone_numbers"
    params: dict[str, str | int] = {"fields": "id", "limit": WABA_NUMBERS_PAGE}
    for _ in range(WABA_NUMBERS_PAGES):
        answer = graph_call(
            lambda timeout, params=params: session.get(  # type: ignore[misc]  # params bound per page
                url, params=params, headers=auth_headers(phone_number), timeout=timeout
            ),
            idempotent=True,
            operation="waba_phone_numbers",
        )
        data = json_list(answer.get("data"))
        if any(isinstance(number, dict) and number.get("id") == phone_number.phone_number_id for number in data):
            return True
        paging = json_object(answer.get("paging"))
        cursors = json_object(paging.get("cursors"))
        if not (paging.get("next") and cursors.get("after")):
            return False
        params = {**params, "after": cursors["after"]}
    return False


# Meta's code for a Block Users call where some users were not blocked or unblocked: its answer is 400
# and still says, user by user, who was and why the others were not.
SOME_USERS_FAILED = 139100


def block_users(phone_number: PhoneNumber, users: list[Json], *, block: bool) -> tuple[int, Json]:
    """Block (POST) or unblock (DELETE) users on the number (/{phone_number_id}/block_users), `users`
    Meta's list of {"user": number or wa_id} or {"user_id": business-scoped user id}: (HTTP status,
    Meta's answer). An answer where some users failed (400, code 139100) is returned, not raised: its
    `block_users` names each. Repeating a block or an unblock changes nothing, so it is retried."""
    url = f"{settings.META_GRAPH_URL}/{phone_number.phone_number_id}/block_users"
    body: Json = {"messaging_product": "whatsapp", "block_users": users}
    method = session.post if block else session.delete
    try:
        return 200, graph_call(
            lambda timeout: method(url, json=body, headers=auth_headers(phone_number), timeout=timeout),
            idempotent=True,
            operation="block_users" if block else "unblock_users",
        )
    except UpstreamError as error:
        answer = error.meta_answer or {}
        if (error.meta_error or {}).get("code") == SOME_USERS_FAILED and isinstance(answer.get("block_users"), dict):
            return int((error.upstream or {}).get("http_status") or 400), answer
        raise


def blocked_users(
    phone_number: PhoneNumber, *, limit: int, after: str | None = None, before: str | None = None
) -> Json:
    """One page of the users blocked on the number, Meta's answer as it gives it ({data, paging})."""
    url = f"{settings.META_GRAPH_URL}/{phone_number.phone_number_id}/block_users"
    params = {"limit": limit, "after": after, "before": before}
    return graph_call(
        lambda timeout: session.get(url, params=params, headers=auth_headers(phone_number), timeout=timeout),
        idempotent=True,
        operation="blocked_users",
    )
