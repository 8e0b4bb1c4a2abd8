"""The one module that talks to subscribers' URLs, and the guard that keeps a subscription from
becoming a way into Kirim's own network.

A URL must be https and its host must resolve only to public addresses, checked when a subscription is
saved and again before each delivery (DNS may have changed since). `WEBHOOK_ALLOW_PRIVATE_URLS` lifts
both rules, for development and tests."""

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings

from kirim.waiting import hold_nothing

EXCERPT_CHARS = 500
_session = requests.Session()
_session.trust_env = False  # never route a subscriber's request through an environment proxy


class UnsafeUrl(ValueError):
    """A URL Kirim will not call; the message says why, for the API's 400 or the delivery's log."""


def _refused(address):
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def resolve(host, port):
    """The addresses `host` resolves to (tests stand in for DNS here)."""
    return {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}


def check_url(url):
    """Raise UnsafeUrl unless Kirim may call `url`. Every address the host resolves to must be public: one private answer is enough to refuse (an attacker picks which one we connect to)."""
    parts = urlsplit(url)
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE_URLS
    if parts.scheme not in (("https", "http") if allow_private else ("https",)):
        raise UnsafeUrl("The URL must start with https://.")
    if not parts.hostname:
        raise UnsafeUrl("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeUrl("The URL must not carry a user name or password.")
    if allow_private:
        return
    host = parts.hostname
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None or host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        if literal is None or _refused(str(literal)):
            raise UnsafeUrl("The URL's host is a loopback, private or link-local address.")
        return
    try:
        addresses = resolve(host, parts.port or 443)
    except (OSError, UnicodeError, ValueError) as error:
        raise UnsafeUrl(f"The URL's host does not resolve ({error}).") from None
    if any(_refused(address) for address in addresses):
        raise UnsafeUrl("The URL's host resolves to a loopback, private or link-local address.")


@dataclass(frozen=True)
class Answer:
    status_code: int | None  # None: no HTTP answer (refused URL, network error, timeout)
    duration_ms: int
    excerpt: str = ""
    retry_after: float | None = None  # seconds, from a Retry-After header
    error: str = ""


def _retry_after(value):
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None  # the HTTP-date form is rare from webhooks receivers: the schedule applies


def post(url, body, headers):
    """POST `body` to `url`: no redirects followed, `WEBHOOK_TIMEOUT` seconds, at most a short excerpt
    of the answer read. Never raises for the subscriber's faults: they are in the Answer."""
    hold_nothing()  # no transaction across a subscriber's answer; the pooled connection goes back meanwhile
    started = time.monotonic()

    def elapsed():
        return int((time.monotonic() - started) * 1000)

    try:
        check_url(url)
        with _session.post(
            url, data=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT, allow_redirects=False, stream=True
        ) as response:
            raw = response.raw.read(EXCERPT_CHARS * 4, decode_content=True) or b""
            return Answer(
                status_code=response.status_code,
                duration_ms=elapsed(),
                excerpt=raw.decode("utf-8", errors="replace")[:EXCERPT_CHARS],
                retry_after=_retry_after(response.headers.get("Retry-After")),
            )
    except UnsafeUrl as error:
        return Answer(None, elapsed(), error=f"refused: {error}")
    except requests.Timeout:
        return Answer(None, elapsed(), error=f"timed out after {settings.WEBHOOK_TIMEOUT:g} s")
    except (requests.RequestException, OSError) as error:
        return Answer(None, elapsed(), error=f"{type(error).__name__}: {error}"[:300])
