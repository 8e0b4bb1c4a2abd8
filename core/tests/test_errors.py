"""Every answer under /v1/ is JSON in the contract's envelope and carries its request id."""

import pytest
from django.conf import settings
from django.test import Client

from conftest import assert_error
from core.errors import InternalError


@pytest.mark.parametrize("path", ["/v1/", "/v1/nope", "/v1/abc/messages", "/v1/12/messages", "/v1/123456/messages/x/y"])
def test_unknown_v1_urls_are_json_404(db, path):
    assert_error(Client().get(path), 404, "resource_not_found")


def test_wrong_method_is_json_405(api, phone_number):
    assert_error(api.delete(f"/v1/{phone_number.phone_number_id}/messages"), 405, "method_not_allowed")
    assert_error(api.post("/v1/health"), 405, "method_not_allowed")


def test_html_accept_header_still_gets_json(api, phone_number):
    response = api.post(f"/v1/{phone_number.phone_number_id}/messages", {}, format="json", HTTP_ACCEPT="text/html")
    assert_error(response, 400, "missing_required_field", "type")


def test_health_needs_no_key(db):
    response = Client().get("/v1/health")
    assert response.status_code == 200
    assert response.json() == {
        "data": {"status": "ok", "version": settings.KIRIM_VERSION},
        "request_id": response["X-Request-Id"],
    }


def test_a_bug_is_a_json_500_that_leaks_nothing(api, phone_number, monkeypatch, caplog):
    def explode(**kwargs):
        raise RuntimeError("secret internals: password=hunter2")

    monkeypatch.setattr("receipts.api.message_mark_read", explode)
    client_body = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"}

    response = api.post(f"/v1/{phone_number.phone_number_id}/messages", client_body, format="json")

    error = assert_error(response, 500, "internal_error")
    assert error["type"] == "api_error"
    assert error["message"] == InternalError.message
    assert "hunter2" not in response.content.decode()
    assert error["request_id"] in caplog.text  # logged with the request id, for support


def test_request_ids_are_unique_public_ids(db):
    ids = {Client().get("/v1/health")["X-Request-Id"] for _ in range(5)}
    assert len(ids) == 5
    assert all(i.startswith("req_") and len(i) == 30 for i in ids)


def test_errors_outside_the_views_are_json_too(db, settings, monkeypatch):
    settings.DEBUG = False

    bad_host = Client().get("/v1/health", HTTP_HOST="evil.example")
    assert_error(bad_host, 400, "invalid_field_value")

    def broken_middleware(self, request):
        raise RuntimeError("boom")

    monkeypatch.setattr("django.contrib.sessions.middleware.SessionMiddleware.process_request", broken_middleware)
    crashed = Client(raise_request_exception=False).get("/v1/health")
    assert_error(crashed, 500, "internal_error")
    assert "boom" not in crashed.content.decode()
