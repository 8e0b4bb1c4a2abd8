"""Meta's Graph API over HTTP: the pooled session, one attempt and its failure in Meta's terms, and the
retries. The modules of this package alone make calls to Meta; the rest of Kirim calls their functions."""

import logging
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

import requests
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
    """What this package reads of a business number (inbox.models.PhoneNumber)."""

    phone_number_id: str
    waba_id: str
    access_token: str


logger = logging.getLogger("kirim.meta")

# One pooled session per process: keep-alive connections to Meta are reused across requests.
session = requests.Session()
session.mount("https://", HTTPAdapter(pool_connections=4, pool_maxsize=32))
session.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=32))


def upstream_error(
    message: str,
    *,
    http_status: int | None = None,
    error: object = None,
    meta_received: bool | None = True,
    answer: Json | None = None,
) -> UpstreamError:
    """UpstreamError carrying what Meta said (code, message, fbtrace_id, HTTP status) in `upstream`, and
    what a caller may conclude: Meta received the call (it answered), may have, or did not."""
    meta_error = json_object(error)
    error_data = json_object(meta_error.get("error_data"))
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
        unanswered = upstream_error(message, meta_received=None if received else False)
        raise _Failed(unanswered, retryable=True, outcome="timeout" if timed_out else "unreachable") from None
    except requests.Timeout:
        late = upstream_error("Meta did not answer in time.", meta_received=None)
        raise _Failed(late, retryable=True, outcome="timeout") from None
    except requests.RequestException:
        unreachable = upstream_error("Meta could not be reached.", meta_received=None)
        raise _Failed(unreachable, retryable=True, outcome="unreachable") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _Failed(
            upstream_error("Meta's answer was not JSON.", http_status=response.status_code),
            retryable=response.status_code >= 500,
            outcome="not_json",
        )
    if response.status_code >= 400 or "error" in body:
        meta_error = json_object(body.get("error"))
        code = meta_error.get("code")
        # Refused for throughput: not taken, so a send may go again after the wait.
        wait = RETRY_AFTER.get(code) if isinstance(code, int) else None
        failure = upstream_error(
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


def auth_headers(phone_number: PhoneNumber) -> dict[str, str]:
    return {"Authorization": f"Bearer {phone_number.access_token}"}


def graph_call(call: Call, *, idempotent: bool, operation: str) -> Json:
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


def json_object(value: object) -> Json:
    """`value` if Meta gave an object there, else {}."""
    return value if isinstance(value, dict) else {}


def json_list(value: object) -> list[Any]:
    """`value` if Meta gave a list there, else []."""
    return value if isinstance(value, list) else []


def first(items: object) -> Json:
    """The first object of a list in Meta's answer, or {}."""
    return items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}
