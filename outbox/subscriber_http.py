"""The one module that talks to subscribers' URLs, and the guard that keeps a subscription from
becoming a way into Kirim's own network.

A URL must be https and its host must resolve only to public addresses, or to addresses in
`WEBHOOK_ALLOWED_NETWORKS` (a company's own receivers), checked when a subscription is saved and again
before each delivery (DNS may have changed since). The delivery then connects to an address that was
checked, never to what a second DNS answer says (DNS rebinding), while the Host header, TLS's SNI and
the certificate check keep the URL's name. `WEBHOOK_ALLOW_PRIVATE_URLS` lifts the rules, for
development and tests."""

import ipaddress
import socket
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from core.db.waiting import hold_nothing
from core.upstream import never_sent

EXCERPT_CHARS = 500

# IPv6 addresses that carry an IPv4 address in their last 32 bits, and reach the host it names:
# IPv4-compatible (::a.b.c.d), IPv4-mapped, IPv4-translated (RFC 2765) and NAT64's well-known prefix.
EMBEDDING_IPV4 = [ipaddress.ip_network(n) for n in ("::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96")]
# Not globally reachable, though Python's table of special addresses may not know it: NAT64 for local
# use (RFC 8215) and the deprecated site-local block.
NOT_GLOBAL_IPV6 = [ipaddress.ip_network(n) for n in ("64:ff9b:1::/48", "fec0::/10")]


class UnsafeUrl(ValueError):
    """A URL Kirim will not call; the message says why, for the API's 400 or the delivery's log."""


def _reached(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address a connection to `ip` ends up at: the IPv4 one inside an IPv6 form that embeds it
    (6to4's 2002::/16 included), else `ip` itself."""
    if ip.version == 4:
        return ip
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in network for network in EMBEDDING_IPV4):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def _refused(address: str) -> bool:
    """Whether `address` is not a public one: loopback, private, link-local, multicast, reserved, or
    an IPv6 form of one of those."""
    ip = _reached(ipaddress.ip_address(address))
    return not ip.is_global or ip.is_multicast or any(ip in network for network in NOT_GLOBAL_IPV6)


def _allowed(address: str, *, public_too: bool = True) -> bool:
    """Whether a subscriber may be at `address`: in WEBHOOK_ALLOWED_NETWORKS, or a public address."""
    ip = _reached(ipaddress.ip_address(address))
    if any(ip in network for network in settings.WEBHOOK_ALLOWED_NETWORKS):
        return True
    return public_too and not _refused(address)


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, in the order DNS gave them (tests stand in for DNS here)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(url: str) -> list[str] | None:
    """The addresses Kirim may connect to for `url`, all checked; UnsafeUrl when there are none. Every
    address the host resolves to must be allowed: one private answer is enough to refuse (an attacker
    picks which one we connect to). None with WEBHOOK_ALLOW_PRIVATE_URLS: anything goes."""
    parts = urlsplit(url)
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE_URLS
    if parts.scheme not in (("https", "http") if allow_private else ("https",)):
        raise UnsafeUrl("The URL must start with https://.")
    if not parts.hostname:
        raise UnsafeUrl("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeUrl("The URL must not carry a user name or password.")
    if allow_private:
        return None
    host = parts.hostname
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = list(resolve(host, parts.port or 443))
        except (OSError, UnicodeError, ValueError) as error:
            raise UnsafeUrl(f"The URL's host does not resolve ({error}).") from None
    # Names of the local network are never public, whatever they resolve to: only the allowed networks.
    local_name = host == "localhost" or host.endswith((".localhost", ".local", ".internal"))
    if not addresses or not all(_allowed(address, public_too=not local_name) for address in addresses):
        raise UnsafeUrl("The URL's host is or resolves to a loopback, private or link-local address.")
    return addresses


# The checked address the request being sent connects to (_send sets it); None: the URL's host resolves.
pinned_address: ContextVar[str | None] = ContextVar("pinned_address", default=None)


class PinnedAdapter(HTTPAdapter):
    """Connects to the `pinned_address` of the send under way when it has one, instead of resolving
    the URL's host again; the URL's host still goes in the Host header, TLS's SNI and the certificate
    check. Connections are pooled per address and name."""

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        if pinned_address.get() is not None:
            request.headers["Host"] = urlsplit(request.url).netloc  # else the address would be sent

    def build_connection_pool_key_attributes(
        self,
        request: requests.PreparedRequest,
        verify: bool | str,
        cert: str | tuple[str, str] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        address = pinned_address.get()
        if address is None:
            return host_params, pool_kwargs
        name = host_params["host"]
        if host_params["scheme"] == "https":
            pool_kwargs = {**pool_kwargs, "server_hostname": name, "assert_hostname": name}
        return {**host_params, "host": address}, pool_kwargs


_session = requests.Session()
_session.trust_env = False  # never route a subscriber's request through an environment proxy
_session.mount("https://", PinnedAdapter())
_session.mount("http://", PinnedAdapter())


@dataclass(frozen=True)
class Answer:
    status_code: int | None  # None: no HTTP answer (refused URL, network error, timeout)
    duration_ms: int
    excerpt: str = ""
    retry_after: float | None = None  # seconds, from a Retry-After header
    error: str = ""


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # the HTTP-date form is rare from webhooks receivers: the schedule applies


def post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST `body` to `url`: no redirects followed, `WEBHOOK_TIMEOUT` seconds, at most a short excerpt
    of the answer read. Connects to the addresses check_url checked, in DNS's order, until one takes
    the connection. Never raises for the subscriber's faults: they are in the Answer."""
    hold_nothing()  # no transaction across a subscriber's answer; the pooled connection goes back meanwhile
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        checked = check_url(url)  # None: any address goes
        addresses: list[str | None] = [None] if checked is None else list(checked)
        request = _session.prepare_request(requests.Request("POST", url, data=body, headers=headers))
        for address in addresses[:-1]:
            try:
                return _send(request, address, elapsed)
            except requests.ConnectionError as error:
                if not never_sent(error):
                    raise
                # nothing was sent: the next checked address may take it
        return _send(request, addresses[-1], elapsed)
    except UnsafeUrl as error:
        return Answer(None, elapsed(), error=f"refused: {error}")
    except requests.Timeout:
        return Answer(None, elapsed(), error=f"timed out after {settings.WEBHOOK_TIMEOUT:g} s")
    except (requests.RequestException, OSError) as error:
        return Answer(None, elapsed(), error=f"{type(error).__name__}: {error}"[:300])


def _send(request: requests.PreparedRequest, address: str | None, elapsed: Callable[[], int]) -> Answer:
    """One try at `address` (None: wherever the URL's host resolves)."""
    pinned = pinned_address.set(address)
    try:
        with _session.send(request, timeout=settings.WEBHOOK_TIMEOUT, allow_redirects=False, stream=True) as response:
            raw = response.raw.read(EXCERPT_CHARS * 4, decode_content=True) or b""
            return Answer(
                status_code=response.status_code,
                duration_ms=elapsed(),
                excerpt=raw.decode("utf-8", errors="replace")[:EXCERPT_CHARS],
                retry_after=_retry_after(response.headers.get("Retry-After")),
            )
    finally:
        pinned_address.reset(pinned)
