"""The metrics in one process (no multiprocess directory): what each door and the Meta client count,
the scrape's refusals, and the labels kept bounded. Counts across processes: kirim/tests/test_observability.py."""

import threading

import pytest
import requests
from django.conf import settings
from django.test import Client
from prometheus_client import REGISTRY

from conftest import assert_error, postgres_only, wait_for
from core import metrics
from dev.dburl import database_url
from testing.meta import graph_messages_url

pytestmark = pytest.mark.django_db


def count(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0


@pytest.fixture
def counted():
    """How much a metric grew during the test: counted(name, **labels) after minus before."""
    before = {}

    def grew(name, **labels):
        return count(name, **labels) - before.get((name, frozenset(labels.items())), 0)

    def remember(name, **labels):
        before[(name, frozenset(labels.items()))] = count(name, **labels)

    grew.remember = remember
    return grew


def test_a_scrape_without_the_token_is_refused_in_the_envelope_and_with_it_answered(settings):
    settings.METRICS_TOKEN = "tok-123"
    assert_error(Client().get("/metrics"), 401, "invalid_api_key")
    assert_error(Client().get("/metrics", HTTP_AUTHORIZATION="Bearer tok-1234"), 401, "invalid_api_key")
    answer = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer tok-123")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain; version=0.0.4")
    text = answer.content.decode()
    assert "kirim_database_up 1.0" in text
    assert "kirim_events_out_pending 0.0" in text
    assert "tok-123" not in text


def test_with_metrics_off_nothing_is_counted_and_there_is_no_scrape(settings, counted):
    settings.METRICS_ENABLED = False
    counted.remember("kirim_http_requests_total", route="v1/health", method="GET", status="200")
    assert Client().get("/v1/health").status_code == 200
    assert counted("kirim_http_requests_total", route="v1/health", method="GET", status="200") == 0
    assert_error(Client().get("/metrics"), 404, "resource_not_found")


def test_requests_count_by_url_pattern_and_a_made_up_method_as_other(counted):
    labels = {"route": "unmatched", "method": "other", "status": "404"}
    counted.remember("kirim_http_requests_total", **labels)
    counted.remember("kirim_http_requests_total", route="v1/health", method="GET", status="200")
    assert Client().get("/v1/health").status_code == 200
    assert Client().generic("BREW", "/coffee-pot").status_code == 404
    assert counted("kirim_http_requests_total", route="v1/health", method="GET", status="200") == 1
    assert counted("kirim_http_requests_total", **labels) == 1


def test_meta_attempts_count_by_operation_and_metas_error_code(api, phone_number, make_message, meta, counted):
    graph = graph_messages_url(phone_number)
    for outcome in ("131000", "100", "unreachable", "ok"):
        counted.remember("kirim_meta_requests_total", operation="mark_read", outcome=outcome)
    meta.post(graph, status=500, json={"error": {"message": "Something went wrong", "code": 131000}})
    meta.post(graph, status=400, json={"error": {"message": "Invalid parameter", "code": 100}})
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": make_message(phone_number).wamid}
    path = f"/v1/{phone_number.phone_number_id}/messages"
    assert api.post(path, read, format="json").status_code == 502  # 131000 retried, then 100 is final
    meta.replace("POST", graph, body=requests.ConnectionError("refused"))
    assert api.post(path, read, format="json").status_code == 502
    meta.replace("POST", graph, json={"success": True})
    assert api.post(path, read, format="json").status_code == 200
    assert counted("kirim_meta_requests_total", operation="mark_read", outcome="131000") == 1
    assert counted("kirim_meta_requests_total", operation="mark_read", outcome="100") == 1
    assert counted("kirim_meta_requests_total", operation="mark_read", outcome="unreachable") >= 1
    assert counted("kirim_meta_requests_total", operation="mark_read", outcome="ok") == 1


def test_refusals_count_by_reason_never_by_key(api, org, counted, settings):
    counted.remember("kirim_api_refusals_total", reason="invalid_api_key")
    counted.remember("kirim_api_refusals_total", reason="rate_limit")
    assert Client().get("/v1/me", HTTP_AUTHORIZATION="Bearer kirim_live_" + "x" * 40).status_code == 401
    org.rate_limit_per_minute = 0  # every request refused
    org.save(update_fields=["rate_limit_per_minute"])
    assert api.get("/v1/me").status_code == 429
    assert counted("kirim_api_refusals_total", reason="invalid_api_key") == 1
    assert counted("kirim_api_refusals_total", reason="rate_limit") == 1


def test_liveness_asks_nothing_of_the_database(django_assert_num_queries):
    with django_assert_num_queries(0):
        answer = Client().get("/v1/health/live")
    assert (answer.status_code, answer.json()["data"]) == (200, {"status": "alive"})


def test_readiness_reports_the_backlog_and_the_workers(db):
    answer = Client().get("/v1/health/ready")
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert data["status"] == "ready" and data["checks"] == {"database": "ok", "migrations": "ok"}
    assert data["details"]["events_out"]["pending"] == 0
    assert data["details"]["workers"] == {"alive": 0, "silent": 0, "youngest_beat_age_seconds": None}


@postgres_only
def test_a_checkout_that_waited_for_the_pool_is_counted_and_connections_out_are_shown():
    from psycopg_pool import ConnectionPool

    waits_before = count("kirim_db_pool_waits_total")
    with ConnectionPool(database_url(settings.DATABASES["default"]).replace("postgres://", "postgresql://"),
                        min_size=1, max_size=1, open=True) as pool:  # fmt: skip
        pool.wait()  # its one connection made: the first checkout does not wait
        held = pool.getconn()
        metrics.pool_watch.look(pool)
        assert count("kirim_db_pool_connections_in_use") == 1 and count("kirim_db_pool_connections_max") == 1
        waiter = threading.Thread(target=lambda: pool.putconn(pool.getconn(timeout=30)))
        waiter.start()
        assert wait_for(lambda: pool.get_stats().get("requests_waiting") == 1)
        pool.putconn(held)
        waiter.join()
        metrics.pool_watch.look(pool)
    assert count("kirim_db_pool_waits_total") - waits_before == 1
    assert count("kirim_db_pool_connections_in_use") == 0
