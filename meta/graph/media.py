"""Media: uploads for later sends, Meta's description of a media object, and its bytes, fetched only
from Meta's media host with the number's token."""

import time
from collections.abc import Iterator
from typing import TypeGuard

import requests
import urllib3
from django.conf import settings

from core import metrics
from core.db.waiting import hold_nothing
from core.upstream import calls_made
from meta.graph.client import Json, PhoneNumber, auth_headers, graph_call, session, upstream_error


def media_upload(phone_number: PhoneNumber, *, content: bytes, filename: str, mime_type: str) -> str:
    """Upload a file for later sends (POST /{phone_number_id}/media); Meta's media id. Not retried once
    Meta may have received it: each upload makes a new media object."""
    url = f"{settings.META_GRAPH_URL}/{phone_number.phone_number_id}/media"
    files: dict[str, tuple[str | None, bytes | str] | tuple[str, bytes, str]] = {
        "file": (filename, content, mime_type),
        "messaging_product": (None, "whatsapp"),
        "type": (None, mime_type),
    }
    answer = graph_call(
        lambda timeout: session.post(url, files=files, headers=auth_headers(phone_number), timeout=timeout),
        idempotent=False,
        operation="media_upload",
    )
    if not isinstance(answer.get("id"), str) or not answer["id"]:
        raise upstream_error("Meta's answer had no media id.", http_status=200)
    media_id: str = answer["id"]
    return media_id


def media_info(phone_number: PhoneNumber, media_id: str) -> Json:
    """Meta's description of a media object (url, mime_type, sha256, file_size, id), read with the
    number's token: Meta answers only for media of that number's WABA. (Not with `phone_number_id`:
    Meta then answers only for media uploaded by that number, and received media was not.)"""
    url = f"{settings.META_GRAPH_URL}/{media_id}"
    return graph_call(
        lambda timeout: session.get(url, headers=auth_headers(phone_number), timeout=timeout),
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


def _is_meta_media_url(url: object) -> TypeGuard[str]:
    """Whether Kirim may fetch `url` with a number's token: Meta's media host over https, or the origin
    of META_GRAPH_URL as configured (a stand-in for Meta is there)."""
    origin = _origin(url) if isinstance(url, str) else None
    if origin is None:
        return False
    return origin == _origin(settings.META_GRAPH_URL) or (
        origin[0] == "https" and origin[1] in META_MEDIA_HOSTS and origin[2] == DEFAULT_PORTS["https"]
    )


def media_download(phone_number: PhoneNumber, url: object) -> tuple[str, Iterator[bytes]]:
    """The bytes at a media `url` that media_info gave (its `url`, whatever Meta put there), read with the number's token: (content type,
    an iterator of chunks). Streamed: a large video is never held whole. Only from Meta's media host
    (_is_meta_media_url), and no redirect is followed: the token goes nowhere else."""
    if not _is_meta_media_url(url):
        raise upstream_error("Meta's description of this media gave no download URL on Meta's media host.")
    hold_nothing()
    started = time.monotonic()
    outcome = "unreachable"
    try:
        response = session.get(
            url, headers=auth_headers(phone_number), stream=True, timeout=settings.META_TIMEOUT, allow_redirects=False
        )
        outcome = "ok" if response.status_code < 300 else f"http_{response.status_code}"
    except requests.RequestException:
        raise upstream_error("Meta could not be reached.") from None
    finally:
        seconds = time.monotonic() - started
        calls_made.record(seconds)
        metrics.meta_request("media_download", outcome, seconds)
    if response.status_code >= 300:
        response.close()
        followed = " (a redirect: Kirim follows none)" if response.status_code < 400 else ""
        raise upstream_error(f"Meta answered HTTP {response.status_code}{followed}.", http_status=response.status_code)
    return response.headers.get("Content-Type", "application/octet-stream"), response.iter_content(64 * 1024)
