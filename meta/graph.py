"""The one module that talks to Meta's Graph API. Everything else calls the functions here."""

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import requests
import urllib3
from django.conf import settings
from requests.adapters import HTTPAdapter

from core import metrics, tracing
from core.db.waiting import hold_nothing
from core.errors import UpstreamError
from core.upstream import calls_made, never_sent

# Meta's JSON objects, as it answers them.
Json = dict[str, Any]
# One HTTP call to Meta, given its timeout in seconds.
Call = Callable[[float], requests.Response]


class PhoneNumber(Protocol):
    """What this module reads of a business number (inbox.models.PhoneNumber)."""

    phone_number_id: str
    waba_id: str
    access_token: str


logger = logging.getLogger("kirim.meta")

# One pooled session per process: keep-alive connections to Meta are reused across requests.
_session = requests.Session()
_session.mount("https://", HTTPAdapter(pool_connections=4, pool_maxsize=32))
_session.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=32))


def _upstream_error(
    message: str,
    *,
    http_status: int | None = None,
    error: object = None,
    meta_received: bool | None = True,
    answer: Json | None = None,
) -> UpstreamError:
    """UpstreamError carrying what Meta said (code, message, fbtrace_id, HTTP status) in `upstream`, and
    what a caller may conclude: Meta received the call (it answered), may have, or did not."""
    meta_error = _object(error)
    error_data = _object(meta_error.get("error_data"))
    upstream = {
        "http_status": http_status,
        "code": meta_error.get("code"),
        "message": meta_error.get("message") or message,
        "fbtrace_id": meta_error.get("fbtrace_id"),
    }
    if error_data.get("details"):
        upstream["details"] = error_data["details"]
    explained = EXPLAINED.get(upstream["code"]) if isinstance(upstream["code"], int) else None
    return UpstreamError(
        f"WhatsApp's Cloud API: {explained or upstream['message']}",
        upstream=upstream,
        meta_error=meta_error or None,
        meta_received=meta_received,
        meta_answer=answer,
    )


# Meta's codes for "try again": 1 unknown error, 2 service temporarily unavailable, 131000 something
# went wrong.
RETRYABLE_CODES = {1, 2, 131000}
BACKOFF_FIRST, BACKOFF_CAP = 0.25, 2.0

# Meta's throughput refusals. Meta did not take the message, so sending it again duplicates nothing,
# but whether a retry can succeed differs: these two are retried after the wait Meta's limit implies
# (within META_RETRY_BUDGET), the others never.
RETRY_AFTER = {
    130429: 1.0,  # the number's throughput (messages a second) was reached: a second later there is room
    131056: 6.0,  # the pair rate limit: Meta takes about one message every 6 seconds to the same user
}
# 131048 (spam rate limit: too many of the number's messages were blocked or reported) and 131049 (the
# user's marketing cap) are never retried: more sends lower the number's quality, or meet the same cap.

# What Kirim's own surface (/v1/) says for these codes, in place of Meta's short message (kept in
# `upstream.message`); /{version}/ answers Meta's error as Meta gave it.
EXPLAINED = {
    130429: "the number's throughput limit was reached (Meta code 130429). Kirim retried after a second "
    "within its retry budget; send more slowly, or ask Meta for a higher throughput.",
    131056: "too many messages to this user in a short time (Meta's pair rate limit, code 131056). Wait "
    "a few seconds before the next message to the same user; messages to others are not affected.",
    131048: "Meta's spam rate limit (code 131048): too many of this number's messages were blocked or "
    "reported. Not retried: sending more lowers the number's quality; check its quality rating.",
    131049: "Meta held this marketing message back to keep the user's engagement healthy (per-user "
    "marketing cap, code 131049). Not retried: the same message would be refused again; try another day.",
    131062: "this message cannot go to a business-scoped user id (Meta code 131062): name the user by "
    "phone number in `to`, or send a kind of message Meta delivers to user ids.",
}


class _Failed(Exception):
    """One attempt's failure: the UpstreamError to give (its `meta_received` says whether Meta may have
    received the call), whether another attempt may succeed, and the metrics' outcome for it."""

    def __init__(self, error: UpstreamError, *, retryable: bool, outcome: str, wait: float | None = None) -> None:
        self.error, self.retryable, self.outcome = error, retryable, outcome
        self.wait = wait  # Meta's throughput limit's wait, before a retry


def _attempt(call: Call, timeout: float, operation: str) -> Json:
    """One HTTP call to Meta, `call(timeout)`; Meta's JSON object, or _Failed. Counted by `operation`
    and outcome in the metrics, and a span of the trace."""
    started = time.monotonic()
    outcome = "ok"
    with tracing.span(f"meta {operation}", kind=tracing.CLIENT, **{"kirim.meta.operation": operation}) as span:
        try:
            return _answer_of(call, timeout)
        except _Failed as failure:
            outcome = failure.outcome
            raise
        finally:
            seconds = time.monotonic() - started
            calls_made.record(seconds)
            metrics.meta_request(operation, outcome, seconds)
            if span is not None:
                span.set_attribute("kirim.meta.outcome", outcome)


def _answer_of(call: Call, timeout: float) -> Json:
    try:
        response = call(timeout)
    except (requests.ConnectTimeout, requests.ConnectionError) as error:
        received = not never_sent(error)
        timed_out = isinstance(error, requests.Timeout)
        message = "Meta did not answer in time." if timed_out else "Meta could not be reached."
        unanswered = _upstream_error(message, meta_received=None if received else False)
        raise _Failed(unanswered, retryable=True, outcome="timeout" if timed_out else "unreachable") from None
    except requests.Timeout:
        late = _upstream_error("Meta did not answer in time.", meta_received=None)
        raise _Failed(late, retryable=True, outcome="timeout") from None
    except requests.RequestException:
        unreachable = _upstream_error("Meta could not be reached.", meta_received=None)
        raise _Failed(unreachable, retryable=True, outcome="unreachable") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _Failed(
            _upstream_error("Meta's answer was not JSON.", http_status=response.status_code),
            retryable=response.status_code >= 500,
            outcome="not_json",
        )
    if response.status_code >= 400 or "error" in body:
        meta_error = _object(body.get("error"))
        code = meta_error.get("code")
        # Refused for throughput: not taken, so a send may go again after the wait.
        wait = RETRY_AFTER.get(code) if isinstance(code, int) else None
        failure = _upstream_error(
            f"Meta answered HTTP {response.status_code}.",
            http_status=response.status_code,
            error=meta_error,
            meta_received=wait is None,
            answer=body,
        )
        raise _Failed(
            failure,
            retryable=bool(wait) or response.status_code >= 500 or code in RETRYABLE_CODES,
            wait=wait,
            # Meta's error codes are a documented few hundred: a bounded label.
            outcome=str(code) if isinstance(code, int) else f"http_{response.status_code}",
        )
    return body


def _headers(phone_number: PhoneNumber) -> dict[str, str]:
    return {"Authorization": f"Bearer {phone_number.access_token}"}


def post_messages(phone_number: PhoneNumber, payload: Json, *, idempotent: bool, operation: str) -> Json:
    """POST /{phone_number_id}/messages with the number's token; Meta's JSON answer, or UpstreamError."""
    url = f"{settings.META_GRAPH_URL}/{phone_number.phone_number_id}/messages"
    return _call(
        lambda timeout: _session.post(url, json=payload, headers=_headers(phone_number), timeout=timeout),
        idempotent=idempotent,
        operation=operation,
    )


def _call(call: Call, *, idempotent: bool, operation: str) -> Json:
    """`call(timeout)` made to Meta until it answers; Meta's JSON object, or UpstreamError.

    Transient failures are retried with capped, jittered backoff, within META_MAX_ATTEMPTS and a total
    of META_RETRY_BUDGET seconds. A call that is not idempotent (a send) is retried only when Meta
    cannot have received it, so a message is never sent twice. `operation` names it in the metrics.

    Never inside a transaction: the caller's pooled connection goes back to the pool for the call."""
    hold_nothing()
    deadline = time.monotonic() + settings.META_RETRY_BUDGET
    attempt = 0
    while True:
        attempt += 1
        remaining = deadline - time.monotonic()
        try:
            return _attempt(call, max(0.1, min(settings.META_TIMEOUT, remaining)), operation)
        except _Failed as failure:
            delay = failure.wait or min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            may_retry = failure.retryable and (idempotent or failure.error.meta_received is False)
            if not may_retry or attempt >= settings.META_MAX_ATTEMPTS or time.monotonic() + delay >= deadline:
                raise failure.error from None
            logger.warning(
                "Meta call failed (%s), retry %d in %.2fs",
                (failure.error.upstream or {}).get("message"),
                attempt,
                delay,
            )
            time.sleep(delay)


def mark_read(phone_number: PhoneNumber, wamid: str, *, typing: bool = False) -> None:
    """Send a read receipt (and optionally a typing bubble) for an inbound message."""
    payload: Json = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
    if typing:
        payload["typing_indicator"] = {"type": "text"}
    body = post_messages(phone_number, payload, idempotent=True, operation="mark_read")  # reading twice changes nothing
    if body.get("success") is not True:
        raise _upstream_error("Meta did not confirm the read receipt.", http_status=200)


@dataclass(frozen=True)
class Accepted:
    wamid: str
    wa_id: str | None  # Meta's normalized form of `to`, which inbound webhooks use as `from`
    message_status: str | None = None  # template pacing (`accepted`, `held_for_quality_assessment`), when given
    user_id: str | None = None  # the recipient's business-scoped user id, when Meta answers one


def send_message(phone_number: PhoneNumber, body: Json) -> Accepted:
    """Send a message (the body is the client's, passed through); what Meta answered for it."""
    answer = post_messages(phone_number, body, idempotent=False, operation="send_message")
    sent = _first(answer.get("messages"))
    wamid = sent.get("id")
    if not isinstance(wamid, str) or not wamid:
        raise _upstream_error("Meta's answer had no message id.", http_status=200)
    contact = _first(answer.get("contacts"))
    wa_id, user_id = contact.get("wa_id"), contact.get("user_id")
    message_status = sent.get("message_status")
    return Accepted(
        user_id=str(user_id)[:64] if user_id else None,
        wamid=wamid[:255],
        wa_id=str(wa_id)[:32] if wa_id else None,
        # Meta's values are short words: anything else is not Meta's pacing status, and is not passed on.
        message_status=message_status if isinstance(message_status, str) and len(message_status) <= 64 else None,
    )


def _object(value: object) -> Json:
    """`value` if Meta gave an object there, else {}."""
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    """`value` if Meta gave a list there, else []."""
    return value if isinstance(value, list) else []


def _first(items: object) -> Json:
    """The first object of a list in Meta's answer, or {}."""
    return items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}


# What Kirim reads of a business number. Meta answers only with a token that can act for the number
# (else code 100, subcode 33: "does not exist, cannot be loaded due to missing permissions").
NUMBER_FIELDS = "id,display_phone_number,verified_name"
WABA_NUMBERS_PAGE, WABA_NUMBERS_PAGES = 100, 10  # a WABA has a few numbers: ten pages is far beyond any


def phone_number_fields(phone_number: PhoneNumber) -> Json:
    """Meta's description of a number (id, display_phone_number, verified_name), read with its token;
    `phone_number` need not be saved (connecting one asks this first)."""
    url = f"{settings.META_GRAPH_URL}/{phone_number.phone_number_id}"
    return _call(
        lambda timeout: _session.get(
            url, params={"fields": NUMBER_FIELDS}, headers=_headers(phone_number), timeout=timeout
        ),
        idempotent=True,
        operation="phone_number_fields",
    )


def waba_lists_phone_number(phone_number: PhoneNumber) -> bool:
    """Whether GET /{waba_id}/phone_numbers, read with the number's token, lists the number."""
    url = f"{settings.META_GRAPH_URL}/{phone_number.waba_id}/phone_numbers"
    params: dict[str, str | int] = {"fields": "id", "limit": WABA_NUMBERS_PAGE}
    for _ in range(WABA_NUMBERS_PAGES):
        answer = _call(
            lambda timeout, params=params: _session.get(  # type: ignore[misc]  # params bound per page
                url, params=params, headers=_headers(phone_number), timeout=timeout
            ),
            idempotent=True,
            operation="waba_phone_numbers",
        )
        data = _list(answer.get("data"))
        if any(isinstance(number, dict) and number.get("id") == phone_number.phone_number_id for number in data):
            return True
        paging = _object(answer.get("paging"))
        cursors = _object(paging.get("cursors"))
        if not (paging.get("next") and cursors.get("after")):
            return False
        params = {**params, "after": cursors["after"]}
    return False


# Meta's own filters of GET /{waba_id}/message_templates (and `summary`, the counts to add), passed on.
TEMPLATE_FILTERS = (
    "fields", "status", "name", "category", "language", "content", "name_or_content", "quality_score", "summary",
)  # fmt: skip


@dataclass(frozen=True)
class TemplatePage:
    templates: list[Json]  # Meta's template objects, untouched
    after: str | None  # cursor of the next page; None on the last one
    before: str | None  # cursor of the previous page; None on the first one
    summary: Json | None = None  # Meta's counts, when asked for with `summary`


def message_templates(
    phone_number: PhoneNumber,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = 25,
    filters: dict[str, str] | None = None,
) -> TemplatePage:
    """One page of the message templates of the WABA that owns `phone_number`, read with its token,
    in Meta's order; page on with `after` (or back with `before`). `filters`: TEMPLATE_FILTERS."""
    if not phone_number.waba_id:
        raise _upstream_error("This number has no WABA id: set it to list its templates.")
    params: dict[str, str | int | None] = {
        name: value for name, value in (filters or {}).items() if name in TEMPLATE_FILTERS and value
    }
    params.update({"limit": limit, "after": after, "before": before})
    url = f"{settings.META_GRAPH_URL}/{phone_number.waba_id}/message_templates"
    answer = _call(
        lambda timeout: _session.get(url, params=params, headers=_headers(phone_number), timeout=timeout),
        idempotent=True,
        operation="message_templates",
    )
    data = answer.get("data")
    paging = _object(answer.get("paging"))
    cursors = _object(paging.get("cursors"))
    return TemplatePage(
        templates=[template for template in data if isinstance(template, dict)] if isinstance(data, list) else [],
        after=cursors.get("after") if paging.get("next") else None,
        before=cursors.get("before") if paging.get("previous") else None,
        summary=answer.get("summary") if isinstance(answer.get("summary"), dict) else None,
    )


def media_upload(phone_number: PhoneNumber, *, content: bytes, filename: str, mime_type: str) -> str:
    """Upload a file for later sends (POST /{phone_number_id}/media); Meta's media id. Not retried once
    Meta may have received it: each upload makes a new media object."""
    url = f"{settings.META_GRAPH_URL}/{phone_number.phone_number_id}/media"
    files: dict[str, tuple[str | None, bytes | str] | tuple[str, bytes, str]] = {
        "file": (filename, content, mime_type),
        "messaging_product": (None, "whatsapp"),
        "type": (None, mime_type),
    }
    answer = _call(
        lambda timeout: _session.post(url, files=files, headers=_headers(phone_number), timeout=timeout),
        idempotent=False,
        operation="media_upload",
    )
    if not isinstance(answer.get("id"), str) or not answer["id"]:
        raise _upstream_error("Meta's answer had no media id.", http_status=200)
    media_id: str = answer["id"]
    return media_id


def media_info(phone_number: PhoneNumber, media_id: str) -> Json:
    """Meta's description of a media object (url, mime_type, sha256, file_size, id), read with the
    number's token: Meta answers only for media of that number's WABA. (Not with `phone_number_id`:
    Meta then answers only for media uploaded by that number, and received media was not.)"""
    url = f"{settings.META_GRAPH_URL}/{media_id}"
    return _call(
        lambda timeout: _session.get(url, headers=_headers(phone_number), timeout=timeout),
        idempotent=True,
        operation="media_info",
    )


# Where Meta's media descriptions point (developers.facebook.com, WhatsApp Cloud API, "Download media"):
# a media `url` is fetched with the number's token only there, or at the origin of META_GRAPH_URL.
META_MEDIA_HOSTS = frozenset({"lookaside.fbsbx.com"})
DEFAULT_PORTS = {"https": 443, "http": 80}


def _origin(url: str) -> tuple[str | None, str, int | None] | None:
    """(scheme, host, port) that requests would connect to for `url`, parsed as requests parses it
    (a decimal, hex or IPv4-mapped host is no name of Meta's); None for a URL it would refuse, or one
    that carries a user name or password."""
    try:
        prepared = requests.Request("GET", url).prepare().url
    except (requests.RequestException, ValueError):
        return None
    parts = urllib3.util.parse_url(prepared or "")
    if parts.auth or not parts.host:
        return None
    return parts.scheme, parts.host, parts.port or DEFAULT_PORTS.get(parts.scheme or "")


def _is_meta_media_url(url: object) -> bool:
    """Whether Kirim may fetch `url` with a number's token: Meta's media host over https, or the origin
    of META_GRAPH_URL as configured (a stand-in for Meta is there)."""
    origin = _origin(url) if isinstance(url, str) else None
    if origin is None:
        return False
    return origin == _origin(settings.META_GRAPH_URL) or (
        origin[0] == "https" and origin[1] in META_MEDIA_HOSTS and origin[2] == DEFAULT_PORTS["https"]
    )


def media_download(phone_number: PhoneNumber, url: str) -> tuple[str, Iterator[bytes]]:
    """The bytes at a media `url` that media_info gave, read with the number's token: (content type,
    an iterator of chunks). Streamed: a large video is never held whole. Only from Meta's media host
    (_is_meta_media_url), and no redirect is followed: the token goes nowhere else."""
    if not _is_meta_media_url(url):
        raise _upstream_error("Meta's description of this media gave no download URL on Meta's media host.")
    hold_nothing()
    started = time.monotonic()
    outcome = "unreachable"
    try:
        response = _session.get(
            url, headers=_headers(phone_number), stream=True, timeout=settings.META_TIMEOUT, allow_redirects=False
        )
        outcome = "ok" if response.status_code < 300 else f"http_{response.status_code}"
    except requests.RequestException:
        raise _upstream_error("Meta could not be reached.") from None
    finally:
        seconds = time.monotonic() - started
        calls_made.record(seconds)
        metrics.meta_request("media_download", outcome, seconds)
    if response.status_code >= 300:
        response.close()
        followed = " (a redirect: Kirim follows none)" if response.status_code < 400 else ""
        raise _upstream_error(f"Meta answered HTTP {response.status_code}{followed}.", http_status=response.status_code)
    return response.headers.get("Content-Type", "application/octet-stream"), response.iter_content(64 * 1024)


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
    method = _session.post if block else _session.delete
    try:
        return 200, _call(
            lambda timeout: method(url, json=body, headers=_headers(phone_number), timeout=timeout),
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
    return _call(
        lambda timeout: _session.get(url, params=params, headers=_headers(phone_number), timeout=timeout),
        idempotent=True,
        operation="blocked_users",
    )
