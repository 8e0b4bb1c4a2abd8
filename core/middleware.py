"""Request ids on every response, one structured log line per request, and the gate that bodies
pass before anything parses them."""

import codecs
import io
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import BadRequest
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponseBase
from django.urls import reverse
from django.views.defaults import bad_request

from core import logs, metrics, tracing
from core.errors import ApiError, HeadersTooLarge, InvalidRequest, RequestTooLarge, UnsupportedMediaType, UriTooLong
from core.ids import new_public_id
from core.logs import LogFields
from core.surfaces import body_limit_for, error_renderer_for
from core.upstream import calls_made

request_log = logging.getLogger("kirim.requests")

GetResponse = Callable[[HttpRequest], HttpResponseBase]


class RequestIdMiddleware:
    """Every request gets a `req_` id; every response carries it in X-Request-Id."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = new_public_id("req")
        request.request_id = request_id  # type: ignore[attr-defined]  # for the doors that read it off the request
        # Until the response is closed: Django logs a 5xx after the middleware has returned. The
        # envelopes read it here too.
        logs.request_id.set(request_id)
        response = self.get_response(request)
        response["X-Request-Id"] = request_id
        return response


def _forget_request_id(**kwargs: Any) -> None:
    logs.request_id.set(None)


request_finished.connect(_forget_request_id)


@contextmanager
def logged_as(request_id: str) -> Iterator[None]:
    """Every line logged inside carries `request_id` (kirim.logs.JsonFormatter)."""
    token = logs.request_id.set(request_id)
    try:
        yield
    finally:
        logs.request_id.reset(token)


class RequestLogMiddleware:
    """One JSON line per request: id, org, route (the URL pattern, never the query string, which may
    hold a verify token), status, duration, and the Meta calls it made. No header, body or secret."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.monotonic()
        calls_made.start()
        with tracing.request_span(request) as finish:
            response = self.get_response(request)
            finish(log_request(request, response.status_code, started), response.status_code)
        return response


def log_request(request: HttpRequest, status: int, started: float, route: str | None = None) -> str | None:
    """The request log's line for `request`, answered `status`, begun at time.monotonic() `started`
    (with calls_made started then). `route` is its URL pattern's, when Django did not resolve it.
    Counted in the metrics too, by the same route, which it returns."""
    match = getattr(request, "resolver_match", None)
    route = match.route if match else route
    duration = time.monotonic() - started
    metrics.http_request(route, request.method, status, duration)
    if not request_log.isEnabledFor(logging.INFO):
        return route
    meta_calls, meta_ms = calls_made.summary()
    user = getattr(request, "user", None)
    request_log.info(
        LogFields(
            request_id=getattr(request, "request_id", None),
            org=getattr(user, "external_id", None),  # an API request's org; staff users have none
            method=request.method,
            route=route,
            status=status,
            duration_ms=round(duration * 1000, 1),
            meta_calls=meta_calls,
            meta_ms=meta_ms,
        )
    )
    return route


CREDENTIAL_IN_QUERY = re.compile(r"((?:access_token|signature)=)[^&\s\"]+")


def _redacted(value: object) -> object:
    return CREDENTIAL_IN_QUERY.sub(r"\1[redacted]", value) if isinstance(value, str) else value


class RedactAccessToken(logging.Filter):
    """The development server logs each request line with its query string, and Meta's own API at
    Kirim takes the API key as `?access_token=` (and a media link's as `?signature=`): neither reaches
    the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _redacted(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        return True


# What gunicorn refused by default with HTML pages of its own (414, 431): Kirim refuses it first, in
# the path's envelope; gunicorn.conf.py sets gunicorn's own limits above these.
URL_MAX_BYTES = 4094
HEADERS_MAX_FIELDS = 100
HEADER_MAX_BYTES = 8190  # a header's name and value


class RequestGateMiddleware:
    """Refuses, before any view, what none can take, in the path's envelope (error_renderer_for) or
    on Django's 400 page: a URL over URL_MAX_BYTES (414), headers past HEADERS_MAX_FIELDS or
    HEADER_MAX_BYTES (431), a NUL in the URL (400: no column holds one, and PostgreSQL refuses it in
    a query), and an admin action's selection that is not ids (400; Django's admin fails on it)."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        error = _head_refusal(request) or _selection_refusal(request)
        if error is None:
            return self.get_response(request)
        render = error_renderer_for(request.path)
        return render(request, error) if render is not None else bad_request(request, BadRequest(error.message))


def _head_refusal(request: HttpRequest) -> ApiError | None:
    url = request.META.get("RAW_URI") or request.get_full_path()  # RAW_URI: as gunicorn read it
    if len(url) > URL_MAX_BYTES:
        return UriTooLong(f"The URL is longer than the {URL_MAX_BYTES} bytes Kirim takes.")
    header_lines = [  # the line "X-Name: value" became "HTTP_X_NAME": "value"
        len(name) - len("HTTP_") + len(": ") + len(value)
        for name, value in request.META.items()
        if name.startswith("HTTP_")
    ]
    if len(header_lines) > HEADERS_MAX_FIELDS or max(header_lines, default=0) > HEADER_MAX_BYTES:
        return HeadersTooLarge(f"Send at most {HEADERS_MAX_FIELDS} headers of at most {HEADER_MAX_BYTES} bytes each.")
    if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
        return InvalidRequest("The URL holds a NUL character.")
    return None


def _selection_refusal(request: HttpRequest) -> ApiError | None:
    if request.method != "POST" or not request.path.startswith(reverse("admin:index")):
        return None
    if not all(pk.isdigit() for pk in request.POST.getlist(ACTION_CHECKBOX_NAME)):
        return InvalidRequest("Select rows by their ids.")
    return None


class BodyGateMiddleware:
    """Refuses a body before any view reads it: 413 over the path's size limit, 415 for a charset
    other than UTF-8 (`charset=rot13` or `zlib` would otherwise reach the JSON decoder).

    Django trusts Content-Length alone: without one (a chunked body) it reads nothing, and its own
    DATA_UPLOAD_MAX_MEMORY_SIZE answers a bare 400. A chunked body that the server has de-chunked
    (`wsgi.input_terminated`, as gunicorn does) is read here up to the limit and handed on whole."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        limit = body_limit_for(request.path)
        error = None if limit is None else body_refusal(request, limit)
        if error is not None:
            # only a refusal needs its shape; a path with a body limit is on a surface, so has a renderer
            return error_renderer_for(request.path)(request, error)  # type: ignore[misc]
        return self.get_response(request)


def body_refusal(request: HttpRequest, limit: int) -> ApiError | None:
    """The ApiError that refuses `request`'s body under a size `limit`, or None."""
    declared = request.META.get("CONTENT_LENGTH")
    if declared:
        size = _as_int(declared)
    elif request.META.get("wsgi.input_terminated"):
        size = _read_dechunked(request, limit)
    else:
        size = 0  # no body, as Django reads it
    if size > limit:
        return RequestTooLarge(f"The body is larger than the {limit} bytes this endpoint takes.")
    charset = request.content_params.get("charset")  # type: ignore[union-attr]  # a WSGIRequest always has them
    if size and charset is not None and not _is_utf8(charset):
        return UnsupportedMediaType(f"Send the body in UTF-8; charset={charset[:40]} is not supported.")
    return None


def _read_dechunked(request: HttpRequest, limit: int) -> int:
    """Read a body that came without Content-Length, up to one byte past `limit`; hand on one within
    it as if it had come with a Content-Length, which Django needs to read it at all. Its size."""
    body = request.META["wsgi.input"].read(limit + 1)
    if body and len(body) <= limit:
        request._stream = io.BytesIO(body)
        request.META["CONTENT_LENGTH"] = str(len(body))
    return len(body)


def _is_utf8(charset: str) -> bool:
    try:
        return codecs.lookup(charset).name == "utf-8"
    except LookupError:
        return False


def _as_int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0  # as Django reads it: a body it will not read
