"""Logs never carry request bodies: not in a message, not in a traceback. An exception keeps its type
and where it happened; its message, which may quote the body, is withheld."""

import json
import logging

import pytest
from django.test import Client

from conftest import assert_error
from core.logs import WITHHELD, JsonFormatter
from fakemeta import payloads

SECRET = "sk_live_CANARY_4f9d2a7be1"  # shaped like something worth stealing


def every_logged_text(records):
    """Each record as a handler would write it: the message and the formatted traceback."""
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    return [formatter.format(record) for record in records]


@pytest.fixture
def database_refuses_the_body(monkeypatch):
    """The send fails as PostgreSQL fails on a value it cannot store: quoting the value."""

    def refuse(*, phone_number, body, **other_arguments):
        try:
            raise ValueError(f"invalid input syntax for type json: {body['text']['body']}")
        except ValueError as cause:
            raise RuntimeError(f"could not store {body}") from cause

    monkeypatch.setattr("inbox.api.v1.message_send", refuse)


def test_a_failed_request_logs_where_it_failed_but_no_part_of_its_body(
    api, phone_number, database_refuses_the_body, caplog
):
    body = {"messaging_product": "whatsapp", "to": "6281234567801", "type": "text", "text": {"body": SECRET}}

    response = api.post(f"/v1/{phone_number.phone_number_id}/messages", body, format="json")

    assert_error(response, 500, "internal_error")
    logged = "\n".join(every_logged_text(caplog.records))
    assert SECRET not in logged
    assert "RuntimeError " + WITHHELD in logged and "ValueError " + WITHHELD in logged
    assert 'core/tests/test_logs.py", line' in logged and "in refuse" in logged  # where it happened
    assert "The above exception was the direct cause of" in logged


def test_an_exception_passed_as_a_log_argument_is_reduced_to_its_type(caplog):
    logger = logging.getLogger("kirim.tests")

    logger.warning("could not apply: %s", UnicodeEncodeError("utf-8", SECRET, 0, 1, "surrogates not allowed"))
    logger.error(KeyError(SECRET))

    logged = every_logged_text(caplog.records)
    assert logged[0].endswith("could not apply: UnicodeEncodeError")
    assert all(SECRET not in text for text in logged)


def test_a_traceback_keeps_no_local_variable(caplog):
    def handle(raw_body):
        return raw_body.decode("ascii")

    try:
        handle(f"é{SECRET}".encode())
    except UnicodeDecodeError:
        logging.getLogger("kirim.tests").exception("decoding failed")

    (text,) = every_logged_text(caplog.records)
    assert SECRET not in text
    assert "in handle" in text and "UnicodeDecodeError " + WITHHELD in text


def test_a_webhook_the_database_refuses_leaves_no_part_of_it_in_the_logs(phone_number, settings, caplog):
    """PostgreSQL's refusal of Infinity in JSON quotes the payload up to the bad token."""
    message = {"from": "6281", "id": "wamid.LEAK", "timestamp": "1749416383", "type": "text",
               "text": {"body": SECRET}, "x": 1e999}  # fmt: skip
    value = {"metadata": {"phone_number_id": phone_number.phone_number_id}, "messages": [message]}
    raw = json.dumps(
        {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": value}]}]}
    ).encode()

    response = Client().post(
        "/webhooks/whatsapp", raw, content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=payloads.sign(raw, settings.META_APP_SECRET),
    )  # fmt: skip

    assert response.status_code < 500
    assert all(SECRET not in text for text in every_logged_text(caplog.records))


def json_lines(records):
    """Each record as Kirim's handlers write it (kirim.logs.JsonFormatter), parsed."""
    formatter = JsonFormatter()
    return [json.loads(formatter.format(record)) for record in records]


def test_every_line_of_a_failed_request_is_json_with_its_request_id_and_no_body(
    api, phone_number, database_refuses_the_body, caplog
):
    caplog.set_level(logging.INFO)
    body = {"messaging_product": "whatsapp", "to": "6281234567890", "type": "text", "text": {"body": SECRET}}
    error = assert_error(api.post(f"/v1/{phone_number.phone_number_id}/messages", body, format="json"), 500,
                         "internal_error")  # fmt: skip
    lines = json_lines(caplog.records)
    assert {line["request_id"] for line in lines} == {error["request_id"]}
    assert {"time", "level", "logger"} <= set(lines[0])
    failure = next(line for line in lines if "exception" in line)
    assert failure["level"] == "ERROR" and "RuntimeError" in failure["exception"]
    request = next(line for line in lines if line["logger"] == "kirim.requests")
    assert (request["status"], request["route"]) == (500, "v1/(?P<phone_number_id>[0-9]{6,20})/messages$")
    assert SECRET not in json.dumps(lines)


def test_a_refused_host_is_logged_in_json_with_the_host_it_refused(caplog):
    caplog.set_level(logging.INFO)
    assert Client(HTTP_HOST="evil.example").get("/v1/health").status_code == 400
    (refusal,) = [line for line in json_lines(caplog.records) if line["logger"] == "django.security.DisallowedHost"]
    assert "evil.example" in refusal["message"] and refusal["request_id"].startswith("req_")
