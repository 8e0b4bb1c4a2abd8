"""Meta's webhook deliveries as production serves them: through kirim.wsgi.application, signed as Meta
signs them; and storing inbound messages broken on purpose."""

import contextlib
import io
import json
from typing import NamedTuple

import pytest
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connections

from fakemeta import payloads
from kirim.wsgi import application  # imported now: django.setup() configures logging anew (caplog's handler)

WEBHOOK_URL = "/webhooks/whatsapp"


@pytest.fixture
def connections_kept_open(monkeypatch):
    """For requests through the WSGI application (`wsgi_call`), as Django's test client does: a
    request must not close the connection the test's transaction lives on as it starts or finishes
    (Django's request signals; Meta's deliveries, inbox.api.meta_webhooks.MetaDeliveries, close it themselves)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    handed_back = []  # each time a delivery would have closed it: what the test sees
    monkeypatch.setattr(connections["default"], "close_if_unusable_or_obsolete", lambda: handed_back.append(True))
    yield handed_back
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


class WsgiResponse(NamedTuple):
    status_code: int
    headers: dict
    content: bytes

    def json(self):
        return json.loads(self.content)


def wsgi_call(
    method, path, body=b"", content_type="application/json", headers=None, *, chunked=False, extra_environ=None
):
    """A request through kirim.wsgi.application as gunicorn makes it: production's dispatch and
    middleware chains, which Django's test client (a handler of its own) does not take."""
    environ = wsgi_environ(method, path, body, content_type, headers, chunked=chunked, extra_environ=extra_environ)
    started = {}

    def start_response(status, response_headers, exc_info=None):
        started["status"], started["headers"] = int(status.split()[0]), dict(response_headers)

    result = application(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()  # as a server does: Django's request_finished
    return WsgiResponse(started["status"], started["headers"], content)


def wsgi_environ(method, path, body=b"", content_type="application/json", headers=None, *, chunked=False,
                 extra_environ=None):  # fmt: skip
    """The WSGI environ of a request as gunicorn builds it. `chunked`: no Content-Length, the body
    de-chunked by the server; `extra_environ`: more of it."""
    return {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SERVER_NAME": "testserver", "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "wsgi.errors": io.StringIO(), "CONTENT_TYPE": content_type,
        **({"wsgi.input_terminated": True} if chunked else {"CONTENT_LENGTH": str(len(body))}),
        **{f"HTTP_{name.upper().replace('-', '_')}": value for name, value in (headers or {}).items()},
        **(extra_environ or {}),
    }  # fmt: skip


@pytest.fixture
def deliver(settings, connections_kept_open):
    """Post a webhook signed as Meta signs it, `payload` as JSON or the `raw` bytes as they are,
    through the WSGI application as production serves it; `request`: more of wsgi_call's arguments."""

    def post(payload, *, secret=None, raw=None, **request):
        body = raw if raw is not None else json.dumps(payload).encode()
        headers = {**signed_by_meta(body, secret), **request.pop("headers", {})}
        return wsgi_call(request.pop("method", "POST"), WEBHOOK_URL, body, headers=headers, **request)

    return post


def signed_by_meta(body, secret=None):
    """The header Meta signs a delivery's `body` with: keyed with the app secret, or `secret`."""
    return {"X-Hub-Signature-256": payloads.sign(body, secret or settings.META_APP_SECRET)}


@pytest.fixture
def break_inbound_storing(monkeypatch):
    """Make storing inbound messages raise `error`, on both of ingestion's paths (PostgreSQL's one
    statement and the steps); use as a context manager to break it for a while."""

    @contextlib.contextmanager
    def broken(error):
        def fail(*args, **kwargs):
            raise error

        with monkeypatch.context() as patch:
            patch.setattr("inbox.services.ingest._store_inbound", fail)
            patch.setattr("inbox.services.ingest_one_statement.INBOUND_IN_ONE_STATEMENT.run", fail)
            yield

    return broken
