"""Kirim as production runs it: gunicorn with 4 workers on PostgreSQL, the Meta stand-in told to
fail in each way Meta can. The API answers 502 in the contract's body, never 500; messages stay
unread; the server keeps serving; after recovery the same requests succeed. Rate limits hold across
separate server processes. What gunicorn refuses itself is answered in JSON and logged without a byte
of the request."""

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests
from django.db import DEFAULT_DB_ALIAS, connection, connections

from conftest import postgres_only, wait_for
from dev.dburl import database_url
from inbox.models import ApiKey, AuthFailureWindow, Message, Status
from orgs.ratelimit import AUTH_FAILURE_BATCH

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True)]


FAULTS = {
    "http-500": {"mode": "error", "status": 500},
    "code-131000": {"mode": "error", "status": 400, "error": {"message": "(#131000) Something went wrong", "code": 131000}},
    "rate-limited-130429": {"mode": "error", "status": 400, "error": {"message": "(#130429) Rate limit hit", "code": 130429}},
    "malformed": {"mode": "malformed", "status": 502},
    "connection-dropped": {"mode": "close"},
    "timeout": {"mode": "timeout", "seconds": 3},
}  # fmt: skip


def test_meta_faults_answer_502_never_500_and_recover(
    start_gunicorn, stand_in, api_key_secret, phone_number, make_message
):
    url = start_gunicorn(workers=4)
    messages = [make_message(phone_number, contact=f"62{n}") for n in range(len(FAULTS) * 2)]
    pairs = iter(zip(messages[::2], messages[1::2], strict=True))
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {api_key_secret}"

    def read(message):
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": message.wamid}
        return session.post(f"{url}/v1/{phone_number.phone_number_id}/messages", json=body, timeout=30)

    for name, fault in FAULTS.items():
        batch = next(pairs)
        requests.post(f"{stand_in.url}/_stand_in/faults", json=fault, timeout=5)
        with ThreadPoolExecutor(4) as pool:
            failed = list(pool.map(read, batch))
        for response in failed:
            assert response.status_code == 502, (name, response.status_code, response.text)
            error = response.json()["error"]
            assert (error["type"], error["code"]) == ("api_error", "whatsapp_upstream_error"), name
            assert error["request_id"] == response.headers["X-Request-Id"]
        assert all(Message.objects.get(pk=m.pk).status == Status.RECEIVED for m in batch), name
        assert requests.get(f"{url}/v1/health", timeout=5).status_code == 200, name

        requests.delete(f"{stand_in.url}/_stand_in/faults", timeout=5)
        assert [read(m).status_code for m in batch] == [200, 200], name
    assert not Message.objects.filter(status=Status.RECEIVED).exists()


def test_rate_limits_are_shared_across_server_processes(start_gunicorn, org, api_key_secret):
    org.rate_limit_per_minute = 20
    org.save(update_fields=["rate_limit_per_minute"])
    servers = [start_gunicorn(workers=2), start_gunicorn(workers=2)]
    if time.time() % 60 > 50:  # keep the burst inside one minute's window
        time.sleep(61 - time.time() % 60)

    def me(n):
        return requests.get(
            f"{servers[n % 2]}/v1/me", headers={"Authorization": f"Bearer {api_key_secret}"}, timeout=10
        )

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(me, range(30)))

    ok = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    assert (len(ok), len(limited)) == (20, 10)
    assert {r.headers["X-RateLimit-Limit"] for r in responses} == {"20"}
    assert sorted(int(r.headers["X-RateLimit-Remaining"]) for r in ok) == list(range(20))
    assert {r.headers["X-RateLimit-Remaining"] for r in limited} == {"0"}
    for response in limited:
        assert response.json()["error"]["code"] == "rate_limit_exceeded"
        assert response.json()["error"]["type"] == "rate_limit_error"
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        assert int(response.headers["X-RateLimit-Reset"]) > time.time()


def test_failed_authentications_are_throttled_across_server_processes(start_gunicorn):
    """Two servers of two workers: four processes, each counting in memory and adding its failures
    to the shared window a batch at a time. Counted per process alone, 4 x 20 would get through."""
    servers = [start_gunicorn(workers=2, AUTH_FAILURES_PER_MINUTE="20") for _ in range(2)]
    if time.time() % 60 > 45:  # keep the run inside one minute's window
        time.sleep(61 - time.time() % 60)

    statuses = [
        requests.get(
            f"{servers[n % 2]}/v1/me", headers={"Authorization": "Bearer kirim_live_" + "u" * 43}, timeout=10
        ).status_code
        for n in range(120)
    ]

    # Each process lets through at most what it counts before its next batch tells it the total.
    assert 20 <= statuses.count(401) <= 20 + 4 * AUTH_FAILURE_BATCH
    assert statuses.count(429) == 120 - statuses.count(401)
    assert AuthFailureWindow.objects.get().count >= 20


def end_every_other_session():
    """What a database restart or failover does to the server's kept connections."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def test_connections_the_database_ended_are_replaced_not_answered_500(start_gunicorn, api_key_secret):
    url = start_gunicorn(workers=2)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {api_key_secret}"
    assert {session.get(f"{url}/v1/me", timeout=10).status_code for _ in range(20)} == {200}

    end_every_other_session()
    time.sleep(0.2)

    # every thread of both workers held a connection the database has since closed
    assert [session.get(f"{url}/v1/me", timeout=10).status_code for _ in range(20)] == [200] * 20


def test_the_health_check_sees_a_closed_connection_without_a_query():
    kept = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with kept.cursor() as cursor:
            cursor.execute("SELECT 'the last statement sent'")
        assert kept.is_usable()
        with connection.cursor() as cursor:  # what the server last received on the kept connection
            cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [kept.connection.info.backend_pid])
            assert cursor.fetchone() == ("SELECT 'the last statement sent'",)

        end_every_other_session()
        deadline = time.monotonic() + 5
        while kept.is_usable() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not kept.is_usable()
    finally:
        kept.close()


def test_health_answers_while_every_pooled_connection_is_busy_and_still_checks_the_database(
    start_gunicorn, api_key_secret
):
    """One worker with a one-connection pool, that connection held by a request waiting on a lock. A
    connection back in good order within the last second shows the database answering: /v1/health
    answers from that at once instead of queueing for the connection. Once that is older, it queues
    for the connection like any query."""
    url = start_gunicorn(workers=1, DB_POOL_SIZE="1", GUNICORN_THREADS="4")

    def me():
        return requests.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {api_key_secret}"}, timeout=30)

    def health(timeout):
        return requests.get(f"{url}/v1/health", timeout=timeout)

    with psycopg.connect(database_url(connection.settings_dict)) as locker, ThreadPoolExecutor(2) as pool:
        assert me().status_code == 200  # the pooled connection back in good order: the evidence
        locker.execute(f"LOCK TABLE {ApiKey._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        waiting = pool.submit(me)
        wait_for_a_session_waiting_on_a_lock(locker)

        started = time.monotonic()
        assert [health(timeout=0.5).status_code for _ in range(3)] == [200] * 3
        assert time.monotonic() - started < 1

        time.sleep(1)  # the evidence is stale now: the health check asks the database, behind `waiting`
        queued = pool.submit(health, timeout=30)
        time.sleep(0.5)
        assert not queued.done()
        locker.rollback()  # the lock released, both answer
        assert (waiting.result().status_code, queued.result().status_code) == (200, 200)


def wait_for_a_session_waiting_on_a_lock(observer):
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    assert wait_for(lambda: observer.execute(waiting).fetchone()[0]), "no session started waiting on the lock"


def raw_request(url, request_bytes):
    """Send bytes no HTTP library would send; (status, headers, body) of the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request_bytes)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body


def assert_kirims_error(status, headers, body, expected_status, code):
    assert status == expected_status, body
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", code)
    assert error["request_id"] == headers["x-request-id"]


def test_a_request_line_gunicorn_cannot_read_is_answered_in_json_and_logged_without_it(start_gunicorn, tmp_path):
    """A NUL in the request line is enough for gunicorn to refuse it; it used to log the line, with
    the API key of `?access_token=`, and answer an HTML page."""
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("w") as log:
        url = start_gunicorn(workers=1, log=log)
        line = b"GET /v23.0/1234567/message_templates?access_token=kirim_live_SECRET\x00 HTTP/1.1\r\nHost: k\r\n\r\n"

        status, headers, body = raw_request(url, line)

    logged = log_path.read_text()
    assert "kirim_live_SECRET" not in logged and "access_token" not in logged and "message_templates" not in logged
    assert_kirims_error(status, headers, body, 400, "malformed_request")
    assert "InvalidRequestLine" in logged and headers["x-request-id"] in logged


def test_urls_and_headers_past_the_limits_are_answered_in_json(start_gunicorn, api_key_secret):
    """A little over Kirim's limits, Kirim answers in the surface's envelope; far over, past gunicorn's
    own, gunicorn's worker answers in Kirim's (no path can be read from such a request). Never the
    HTML pages gunicorn answers 414 and 431 with."""
    url = start_gunicorn(workers=1)
    v1, graph = f"{url}/v1/me", f"{url}/v23.0/1234567/message_templates"
    key = {"Authorization": f"Bearer {api_key_secret}"}
    long_query, longer_query = "?q=" + "x" * 5000, "?q=" + "x" * 9000
    many_headers = {**key, **{f"X-Extra-{n}": "1" for n in range(120)}}

    for response, status, code in (
        (requests.get(v1 + long_query, headers=key, timeout=10), 414, "uri_too_long"),
        (requests.get(v1, headers=many_headers, timeout=10), 431, "request_headers_too_large"),
        (requests.get(v1, headers={**key, "X-Big": "x" * 9000}, timeout=10), 431, "request_headers_too_large"),
    ):
        assert_kirims_error(response.status_code, response.headers, response.content, status, code)
    for response, status in (
        (requests.get(graph + long_query, headers=key, timeout=10), 414),
        (requests.get(graph, headers={**key, "X-Big": "x" * 9000}, timeout=10), 431),
    ):
        assert response.status_code == status
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["error"]["code"] == 100 and response.json()["error"]["fbtrace_id"].startswith("req_")

    past_gunicorns = (
        (f"GET /v1/me{longer_query} HTTP/1.1\r\nHost: k\r\n\r\n", 414, "uri_too_long"),
        ("GET /v1/me HTTP/1.1\r\nHost: k\r\nX-Big: " + "x" * 20000 + "\r\n\r\n", 431, "request_headers_too_large"),
    )
    for request_text, status, code in past_gunicorns:
        assert_kirims_error(*raw_request(url, request_text.encode()), status, code)
