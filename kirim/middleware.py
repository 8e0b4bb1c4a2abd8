"""Request ids on every response, and one structured log line per request."""

import json
import logging
import re
import time

from kirim.ids import new_public_id
from kirim.meta_graph import calls_made

request_log = logging.getLogger("kirim.requests")


class RequestIdMiddleware:
    """Every request gets a `req_` id; every response carries it in X-Request-Id."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = new_public_id("req")
        response = self.get_response(request)
        response["X-Request-Id"] = request.request_id
        return response


class RequestLogMiddleware:
    """One JSON line per request: id, org, route (the URL pattern, never the query string, which may
    hold a verify token), status, duration, and the Meta calls it made. No header, body or secret."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.monotonic()
        calls_made.start()
        response = self.get_response(request)
        meta_calls, meta_ms = calls_made.summary()
        match = getattr(request, "resolver_match", None)
        user = getattr(request, "user", None)
        request_log.info(
            json.dumps(
                {
                    "request_id": getattr(request, "request_id", None),
                    "org": getattr(user, "external_id", None),  # an API request's org; staff users have none
                    "method": request.method,
                    "route": match.route if match else None,
                    "status": response.status_code,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    "meta_calls": meta_calls,
                    "meta_ms": meta_ms,
                }
            )
        )
        return response


ACCESS_TOKEN_IN_QUERY = re.compile(r"(access_token=)[^&\s\"]+")


def _redacted(value):
    return ACCESS_TOKEN_IN_QUERY.sub(r"\1[redacted]", value) if isinstance(value, str) else value


class RedactAccessToken(logging.Filter):
    """The development server logs each request line with its query string, and Meta's own API at
    Kirim takes the API key as `?access_token=`: the key never reaches the log."""

    def filter(self, record):
        record.msg = _redacted(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        return True
