"""kirim.wsgi.application: Meta's deliveries answered in front of Django's handler
(inbox.api.meta_webhooks.MetaDeliveries), everything else, other requests to the webhook's URL included, by
Django with settings.MIDDLEWARE, as any request."""

import json
import logging

import pytest
from django.db import OperationalError
from django.urls import get_script_prefix, set_script_prefix

from fakemeta import payloads
from inbox.models import Message
from kirim.wsgi import application
from testing.webhooks import WEBHOOK_URL, signed_by_meta, wsgi_call, wsgi_environ

pytestmark = pytest.mark.usefixtures("connections_kept_open")  # requests go through the WSGI application


@pytest.fixture
def django_answered(monkeypatch):
    """The requests that Django's handler answered, by path."""
    answered = []
    django_application = application.django_application

    def spy(environ, start_response):
        answered.append(environ["PATH_INFO"])
        return django_application(environ, start_response)

    monkeypatch.setattr(application, "django_application", spy)
    return answered


@pytest.fixture
def connections_handed_back(connections_kept_open):
    """Each time a delivery handed its pooled connection back (kept open for the test)."""
    return connections_kept_open


def test_a_delivery_is_answered_in_front_of_django_with_its_id_and_log_line(
    phone_number, deliver, django_answered, connections_handed_back, caplog
):
    caplog.set_level(logging.INFO, logger="kirim.requests")

    response = deliver(
        payloads.webhook(phone_number.phone_number_id, messages=[payloads.text_message("wamid.W1", "62812", "hi")])
    )

    assert (response.status_code, response.content, django_answered) == (200, b"OK", [])
    assert Message.objects.filter(wamid="wamid.W1").exists()
    assert response.headers["Content-Length"] == "2" and response.headers["X-Request-Id"].startswith("req_")
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "kirim.requests"]
    assert (line["request_id"], line["method"], line["route"], line["status"]) == (
        response.headers["X-Request-Id"], "POST", "webhooks/whatsapp", 200,
    )  # fmt: skip
    assert connections_handed_back == [True]


def test_a_database_outage_on_the_way_in_front_is_djangos_500_envelope(
    phone_number, deliver, break_inbound_storing, connections_handed_back, caplog
):
    with break_inbound_storing(OperationalError("connection refused")):
        response = deliver(
            payloads.webhook(phone_number.phone_number_id, messages=[payloads.text_message("wamid.W2", "62812", "x")])
        )

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert response.json()["error"]["request_id"] == response.headers["X-Request-Id"]
    assert [r.getMessage() for r in caplog.records if r.name == "django.request"] == [
        "Internal Server Error: /webhooks/whatsapp"
    ]
    assert connections_handed_back == [True]


@pytest.fixture
def delivery_environ(phone_number):
    """A signed delivery's WSGI environ, for the tests that play the server's part themselves."""
    body = payloads.encode(payloads.webhook(phone_number.phone_number_id, messages=[]))
    return wsgi_environ("POST", WEBHOOK_URL, body, headers=signed_by_meta(body))


def test_a_delivery_hands_its_connection_back_once_the_server_has_sent_the_answer(
    delivery_environ, django_answered, connections_handed_back
):
    handed_back_when = {}

    answer = application(
        delivery_environ,
        lambda status, headers: handed_back_when.setdefault("answered", list(connections_handed_back)),
    )
    content = b"".join(answer)
    handed_back_when["sent"] = list(connections_handed_back)
    answer.close()

    assert content == b"OK" and handed_back_when == {"answered": [], "sent": []}
    assert connections_handed_back == [True] and django_answered == []


def test_a_delivery_whose_answer_cannot_be_started_hands_its_connection_back_at_once(
    delivery_environ, connections_handed_back
):
    def client_gone(status, headers):
        raise OSError("broken pipe")

    with pytest.raises(OSError):
        application(delivery_environ, client_gone)

    assert connections_handed_back == [True]


@pytest.mark.parametrize(
    "case",
    ["bad signature", "over the size limit", "another charset", "no Content-Length", "a GET", "plain HTTP"],
)
def test_anything_but_a_plain_delivery_is_djangos_to_answer(phone_number, deliver, django_answered, settings, case):
    body = json.dumps(payloads.webhook(phone_number.phone_number_id, messages=[])).encode()
    method, content_type, headers, expected = "POST", "application/json", {}, None
    if case == "bad signature":
        headers, expected = {"X-Hub-Signature-256": "sha256=00"}, 401
    elif case == "over the size limit":
        settings.WEBHOOK_MAX_BODY_BYTES, expected = len(body) - 1, 413
    elif case == "another charset":
        content_type, expected = "application/json; charset=rot13", 415
    elif case == "a GET":
        method, body, expected = "GET", b"", 403
    elif case == "plain HTTP":  # Django's SecurityMiddleware redirects it (it read the setting at start: 200 here)
        settings.SECURE_SSL_REDIRECT, expected = True, 200

    chunked = case == "no Content-Length"
    response = deliver(None, raw=body, method=method, content_type=content_type, headers=headers, chunked=chunked)

    assert response.status_code == (200 if chunked else expected)  # chunked: read whole by the body gate
    assert django_answered == [WEBHOOK_URL]


def test_everything_else_takes_the_full_chain(db, django_answered):
    page = wsgi_call("GET", "/admin/login/", content_type="")
    assert page.status_code == 200
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "csrftoken" in page.headers.get("Set-Cookie", "") or "Cookie" in page.headers.get("Vary", "")
    assert django_answered == ["/admin/login/"]


class BrokenBody:
    """A body whose client went away while it was being read."""

    def read(self, *args):
        raise OSError("connection reset by peer")

    readline = read


def test_a_delivery_whose_body_cannot_be_read_is_djangos_500_envelope(
    phone_number, deliver, django_answered, connections_handed_back
):
    webhook = payloads.webhook(phone_number.phone_number_id, messages=[])

    response = deliver(webhook, extra_environ={"wsgi.input": BrokenBody()})

    assert (response.status_code, response.json()["error"]["code"]) == (500, "internal_error")
    assert response.json()["error"]["request_id"] == response.headers["X-Request-Id"]
    assert django_answered == [] and connections_handed_back == [True]


@pytest.fixture
def script_prefix_kept():
    """Django's handler sets the thread's script prefix from SCRIPT_NAME and leaves it: put it back
    for the tests that follow, whose reverse() would otherwise point under the prefix."""
    prefix = get_script_prefix()
    yield
    set_script_prefix(prefix)


def test_under_a_url_prefix_deliveries_go_to_django_and_are_stored(
    phone_number, deliver, django_answered, script_prefix_kept
):
    message = payloads.text_message("wamid.PREFIX", "62812", "hi")

    response = deliver(
        payloads.webhook(phone_number.phone_number_id, messages=[message]), extra_environ={"SCRIPT_NAME": "/kirim"}
    )

    assert response.status_code == 200 and django_answered == [WEBHOOK_URL]
    assert Message.objects.filter(wamid="wamid.PREFIX").exists()
