"""Failed authentication costs the database no write, and an address that keeps failing is refused
(429 in the envelope, with Retry-After) before any query, across processes and hosts."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from conftest import ON_POSTGRES, assert_error
from inbox.models import AuthFailureWindow
from orgs.ratelimit import AUTH_FAILURE_BATCH, AuthFailures

UNKNOWN_KEY = "kirim_live_" + "u" * 43


def rows_written():
    """Rows inserted, updated or deleted so far on this connection (PostgreSQL: in this transaction)."""
    if ON_POSTGRES:
        with connection.cursor() as cursor:
            cursor.execute("SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_xact_user_tables")
            return cursor.fetchone()[0]
    return connection.connection.total_changes


def me(key=UNKNOWN_KEY, address="203.0.113.7", **headers):
    client = APIClient(REMOTE_ADDR=address)
    return client.get("/v1/me", HTTP_AUTHORIZATION=f"Bearer {key}", **headers)


@pytest.fixture(autouse=True)
def inside_one_minute():
    if time.time() % 60 > 55:  # the counts are per minute: keep each test inside one
        time.sleep(61 - time.time() % 60)


def test_an_unknown_key_costs_one_lookup_and_writes_nothing(db):
    me(address="203.0.113.99")  # the connection's first query prepares it: not counted below
    before = rows_written()

    with CaptureQueriesContext(connection) as queries:
        statuses = [me().status_code for _ in range(AUTH_FAILURE_BATCH - 1)]

    assert statuses == [401] * (AUTH_FAILURE_BATCH - 1)
    assert len(queries) == AUTH_FAILURE_BATCH - 1  # the key lookup, nothing else
    assert rows_written() == before


def test_failures_reach_the_shared_window_once_per_batch(db):
    with CaptureQueriesContext(connection) as queries:
        for _ in range(2 * AUTH_FAILURE_BATCH + 3):
            me()

    assert len(queries) == 2 * AUTH_FAILURE_BATCH + 3 + 2  # a lookup each, an upsert per batch
    assert AuthFailureWindow.objects.get(address="203.0.113.7").count == 2 * AUTH_FAILURE_BATCH


def test_an_address_that_keeps_failing_is_refused_without_a_query(db, settings, api_key_secret):
    settings.AUTH_FAILURES_PER_MINUTE = 5
    me(api_key_secret)  # this key has worked in this process

    failures = [me() for _ in range(5)]
    with CaptureQueriesContext(connection) as queries:
        refused = me()

    assert [r.status_code for r in failures] == [401] * 5
    assert_error(refused, 429, "rate_limit_exceeded")
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert len(queries) == 0
    assert me(api_key_secret).status_code == 200  # a key known good here still gets through
    assert me(address="198.51.100.1").status_code == 401  # other addresses are not affected


def test_behind_a_proxy_the_forwarded_address_counts(db, settings):
    settings.AUTH_FAILURES_PER_MINUTE = 2
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"

    def through_proxy(client_address):
        return me(address=proxy, HTTP_X_FORWARDED_FOR=f"1.2.3.4, {client_address}").status_code

    assert [through_proxy("203.0.113.7") for _ in range(3)] == [401, 401, 429]
    assert through_proxy("203.0.113.8") == 401  # the spoofable first entry is ignored, the proxy's is used


def test_ipv6_addresses_count_per_64_network(db, settings):
    settings.AUTH_FAILURES_PER_MINUTE = 2

    statuses = [me(address=f"2001:db8:1:2::{n}").status_code for n in range(1, 4)]

    assert statuses == [401, 401, 429]


def test_another_process_sees_the_failures_this_one_added(db, settings):
    """Two counters stand for two processes or hosts: each learns the other's failures when it adds
    its own batch, and refuses the address once the total is reached."""
    settings.AUTH_FAILURES_PER_MINUTE = 30
    here, there = AuthFailures(), AuthFailures()
    request = APIClient().get("/v1/health").wsgi_request
    now = time.time()

    for _ in range(20):
        there.failed(request, now)
    for _ in range(AUTH_FAILURE_BATCH):
        here.failed(request, now)

    assert there.retry_after(request, now) is None  # it has not added a batch since
    assert here.retry_after(request, now) is not None
