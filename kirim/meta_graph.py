"""The one module that talks to Meta's Graph API. Everything else calls the functions here."""

import contextvars
import logging
import random
import time
from dataclasses import dataclass

import requests
import urllib3
from django.conf import settings
from requests.adapters import HTTPAdapter

from kirim.errors import UpstreamError

logger = logging.getLogger("kirim.meta")

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


# Meta's codes for "try again": 1 unknown error, 2 service temporarily unavailable, 131000 something
# went wrong. 130429 (throughput limit) is not retried: waiting inside a request would not help.
RETRYABLE_CODES = {1, 2, 131000}
BACKOFF_FIRST, BACKOFF_CAP = 0.25, 2.0


class _Failed(Exception):
    """One attempt's failure: the UpstreamError to give, and whether Meta may have received the call."""

    def __init__(self, error, *, retryable, maybe_received=True):
        self.error, self.retryable, self.maybe_received = error, retryable, maybe_received


def _attempt(phone_number, payload, timeout):
    started = time.monotonic()
    try:
        response = _session.post(
            f"{settings.META_GRAPH_URL}/{phone_number.phone_number_id}/messages",
            json=payload,
            headers={"Authorization": f"Bearer {phone_number.access_token}"},
            timeout=timeout,
        )
    except (requests.ConnectTimeout, requests.ConnectionError) as error:
        received = not _never_sent(error)
        message = (
            "Meta did not answer in time." if isinstance(error, requests.Timeout) else "Meta could not be reached."
        )
        raise _Failed(_upstream_error(message), retryable=True, maybe_received=received) from None
    except requests.Timeout:
        raise _Failed(_upstream_error("Meta did not answer in time."), retryable=True) from None
    except requests.RequestException:
        raise _Failed(_upstream_error("Meta could not be reached."), retryable=True) from None
    finally:
        calls_made.record(time.monotonic() - started)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _Failed(
            _upstream_error("Meta's answer was not JSON.", http_status=response.status_code),
            retryable=response.status_code >= 500,
        )
    if response.status_code >= 400 or "error" in body:
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        raise _Failed(
            _upstream_error(
                f"Meta answered HTTP {response.status_code}.", http_status=response.status_code, error=error
            ),
            retryable=response.status_code >= 500 or error.get("code") in RETRYABLE_CODES,
        )
    return body


def _never_sent(error):
    """True when the connection was never made, so Meta cannot have received the request."""
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(error, requests.ConnectTimeout) or isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    )


def post_messages(phone_number, payload, *, idempotent):
    """POST /{phone_number_id}/messages with the number's token; Meta's JSON answer, or UpstreamError.

    Transient failures are retried with capped, jittered backoff, within META_MAX_ATTEMPTS and a total
    of META_RETRY_BUDGET seconds. A call that is not idempotent (a send) is retried only when Meta
    cannot have received it, so a message is never sent twice."""
    deadline = time.monotonic() + settings.META_RETRY_BUDGET
    attempt = 0
    while True:
        attempt += 1
        remaining = deadline - time.monotonic()
        try:
            return _attempt(phone_number, payload, timeout=max(0.1, min(settings.META_TIMEOUT, remaining)))
        except _Failed as failure:
            delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            may_retry = failure.retryable and (idempotent or not failure.maybe_received)
            if not may_retry or attempt >= settings.META_MAX_ATTEMPTS or time.monotonic() + delay >= deadline:
                raise failure.error from None
            logger.warning(
                "Meta call failed (%s), retry %d in %.2fs", failure.error.upstream["message"], attempt, delay
            )
            time.sleep(delay)


class CallLog:
    """Meta calls made while handling the current request, for its log line."""

    def __init__(self):
        self._calls = contextvars.ContextVar("meta_calls", default=None)

    def start(self):
        self._calls.set([])

    def record(self, seconds):
        calls = self._calls.get()
        if calls is not None:
            calls.append(seconds)

    def summary(self):
        calls = self._calls.get() or []
        return len(calls), round(sum(calls) * 1000, 1)


calls_made = CallLog()


def mark_read(phone_number, wamid, *, typing=False):
    """Send a read receipt (and optionally a typing bubble) for an inbound message."""
    payload = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
    if typing:
        payload["typing_indicator"] = {"type": "text"}
    body = post_messages(phone_number, payload, idempotent=True)  # reading twice changes nothing
    if body.get("success") is not True:
        raise _upstream_error("Meta did not confirm the read receipt.", http_status=200)


@dataclass(frozen=True)
class Accepted:
    wamid: str
    wa_id: str | None  # Meta's normalized form of `to`, which inbound webhooks use as `from`


def send_message(phone_number, body):
    """Send a message (the body is the client's, passed through); Meta's wamid for it."""
    answer = post_messages(phone_number, body, idempotent=False)
    messages = answer.get("messages")
    wamid = messages[0].get("id") if isinstance(messages, list) and messages and isinstance(messages[0], dict) else None
    if not isinstance(wamid, str) or not wamid:
        raise _upstream_error("Meta's answer had no message id.", http_status=200)
    contacts = answer.get("contacts")
    wa_id = (
        contacts[0].get("wa_id") if isinstance(contacts, list) and contacts and isinstance(contacts[0], dict) else None
    )
    return Accepted(wamid=wamid[:255], wa_id=str(wa_id)[:32] if wa_id else None)
