"""kirim.wsgi.application: Meta's webhooks through their own short middleware chain, everything else
through settings.MIDDLEWARE, and the full list left as it was."""

import json
import logging

import pytest
from django.conf import settings

from conftest import WEBHOOK_URL, wsgi_call
from fakemeta import payloads
from inbox.models import Message

pytestmark = pytest.mark.usefixtures("connections_kept_open")  # requests go through the WSGI application


def test_a_webhook_takes_the_short_chain_and_keeps_ids_log_and_body_gate(phone_number, deliver, caplog):
    message = payloads.text_message("wamid.WSGI1", "6281200000", "hi")
    caplog.set_level(logging.INFO, logger="kirim.requests")
    response = deliver(payloads.webhook(phone_number.phone_number_id, messages=[message]))

    assert response.status_code == 200
    assert Message.objects.filter(wamid="wamid.WSGI1").exists()
    assert response.headers["X-Request-Id"].startswith("req_")
    assert "X-Frame-Options" not in response.headers  # clickjacking, sessions, CSRF... not on this chain
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "kirim.requests"]
    assert (line["request_id"], line["route"], line["status"]) == (
        response.headers["X-Request-Id"],
        "webhooks/whatsapp",
        200,
    )

    too_big = b"{" + b" " * settings.WEBHOOK_MAX_BODY_BYTES + b"}"
    refused = wsgi_call("POST", WEBHOOK_URL, too_big)
    assert (refused.status_code, refused.json()["error"]["code"]) == (413, "request_too_large")


def test_everything_else_takes_the_full_chain(db):
    page = wsgi_call("GET", "/admin/login/", content_type="")
    assert page.status_code == 200
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "csrftoken" in page.headers.get("Set-Cookie", "") or "Cookie" in page.headers.get("Vary", "")
    assert "django.middleware.clickjacking.XFrameOptionsMiddleware" in settings.MIDDLEWARE  # left as it was
