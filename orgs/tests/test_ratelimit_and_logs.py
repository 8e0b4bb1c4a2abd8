"""Rate-limit headers and 429s, and the one JSON log line per request."""

import json
import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import assert_error, postgres_only
from inbox.models import ApiKey, AuthFailureWindow, Org, RateLimitWindow


def test_headers_count_down_and_the_limit_answers_429(api, org, settings):
    settings.RATE_LIMIT_PER_MINUTE = 3

    responses = [api.get("/v1/me") for _ in range(4)]

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r["X-RateLimit-Remaining"] for r in responses] == ["2", "1", "0", "0"]
    assert {r["X-RateLimit-Limit"] for r in responses} == {"3"}
    limited = responses[-1]
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert RateLimitWindow.objects.get(org=org).count == 4


def test_an_orgs_own_limit_wins(api, org, settings):
    settings.RATE_LIMIT_PER_MINUTE = 1
    org.rate_limit_per_minute = 5
    org.save()

    assert [api.get("/v1/me").status_code for _ in range(6)] == [200] * 5 + [429]


def test_an_org_limited_to_zero_is_stopped_and_empty_means_the_default(api, org, settings):
    """0 is what an operator sets to stop an org: every request is refused, whatever the default."""
    settings.RATE_LIMIT_PER_MINUTE = 5
    org.rate_limit_per_minute = 0
    org.save(update_fields=["rate_limit_per_minute"])

    refused = api.get("/v1/me")

    assert_error(refused, 429, "rate_limit_exceeded")
    assert (refused["X-RateLimit-Limit"], refused["X-RateLimit-Remaining"]) == ("0", "0")
    assert 1 <= int(refused["Retry-After"]) <= 60
    org.rate_limit_per_minute = None
    org.save(update_fields=["rate_limit_per_minute"])
    assert api.get("/v1/me")["X-RateLimit-Limit"] == "5"


@pytest.mark.django_db(transaction=True)
def test_orgs_that_held_zero_keep_the_default_they_were_served_at(org):
    """Before 0 stopped an org it meant the default; the migration keeps those orgs served."""
    executor = MigrationExecutor(connection)
    executor.migrate([("inbox", "0020_media")])
    Org.objects.filter(pk=org.pk).update(rate_limit_per_minute=0)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    org.refresh_from_db()
    assert org.rate_limit_per_minute is None


def test_revoked_and_expired_keys_are_refused_without_counting(org):
    revoked, revoked_secret = ApiKey.issue(org=org)
    revoked.revoked_at = timezone.now()
    revoked.save()
    _, expired_secret = ApiKey.issue(org=org, expires_at=timezone.now() - timedelta(seconds=1))
    _, live_secret = ApiKey.issue(org=org)
    client = APIClient()

    statuses = [
        client.get("/v1/me", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code
        for secret in (revoked_secret, expired_secret, live_secret)
    ]

    assert statuses == [401, 401, 200]
    assert RateLimitWindow.objects.get(org=org).count == 1


def test_health_and_the_schema_are_not_counted(client, db):
    assert "X-RateLimit-Limit" not in client.get("/v1/health")
    assert not RateLimitWindow.objects.exists()


def test_one_json_line_per_request_with_no_secret(
    api, api_key_secret, phone_number, make_message, meta_accepts_reads, caplog
):
    caplog.set_level(logging.INFO, logger="kirim.requests")
    message = make_message(phone_number)
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": message.wamid}

    response = api.post(f"/v1/{phone_number.phone_number_id}/messages", body, format="json")

    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "kirim.requests"]
    assert lines == [
        {
            "request_id": response["X-Request-Id"],
            "org": phone_number.org.external_id,
            "method": "POST",
            "route": "v1/(?P<phone_number_id>[0-9]{6,20})/messages$",
            "status": 200,
            "duration_ms": lines[0]["duration_ms"],
            "meta_calls": 1,
            "meta_ms": lines[0]["meta_ms"],
        }
    ]
    assert lines[0]["duration_ms"] >= lines[0]["meta_ms"] >= 0
    assert api_key_secret not in caplog.text and phone_number.access_token not in caplog.text


@postgres_only
def test_rate_limit_windows_skip_the_write_ahead_log_on_postgresql(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT relpersistence FROM pg_class WHERE relname = %s", [RateLimitWindow._meta.db_table])
        assert cursor.fetchone() == ("u",)  # unlogged
        cursor.execute("SELECT relpersistence FROM pg_class WHERE relname = %s", [AuthFailureWindow._meta.db_table])
        assert cursor.fetchone() == ("u",)


@pytest.mark.parametrize("name", ["access_token", "signature"])
def test_the_development_servers_request_line_never_shows_an_access_token(name):
    """runserver logs `"GET /path?query HTTP/1.1" 200 12` through django.server; the key of Meta's own
    API, given as `?access_token=`, and a media link's `?signature=` are redacted there (Kirim's own
    request log has no query at all)."""
    handler = next(h for h in logging.getLogger("django.server").handlers if h.filters)
    record = logging.LogRecord("django.server", logging.INFO, __file__, 1, '"%s" %s %s', None, None)
    record.args = (f"GET /v23.0/1/message_templates?{name}=kirim_live_SECRET&limit=2 HTTP/1.1", "200", "12")

    assert handler.filter(record)
    assert "kirim_live_SECRET" not in record.getMessage()
    assert f"{name}=[redacted]&limit=2" in record.getMessage()
