"""Fixtures shared by every app's tests: orgs, numbers, keys, members, messages; and the helpers most tests
import. Meta mocked by `responses` and the other groups of fixtures are in testing/, loaded below."""

import importlib
import itertools
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from inbox.models import ApiKey, Direction, Message, Org, PhoneNumber, Role, Status
from inbox.services.inbound_rows import conversations_touch
from meta import graph as meta_graph
from orgs.members import member_add
from orgs.ratelimit import auth_failures

# Fixtures by concern, in testing/: Meta mocked or stood in, webhooks through the WSGI application, and
# the programs some tests drive (headless Chromium, node).
pytest_plugins = ["testing.meta", "testing.webhooks", "testing.programs"]

STAFF_PASSWORD = "correct horse battery"
PHONE_NUMBER_ID = "106540352242922"  # the `phone_number` fixture's, which webhook payloads in tests name
ON_POSTGRES = connection.vendor == "postgresql"
postgres_only = pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL (set DATABASE_URL=postgres://...)")


def free_port():
    """A loopback port nothing listens on, for servers the tests start."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fire_at_once(count, request):
    barrier = threading.Barrier(count)
    results = [None] * count

    def worker(index):
        try:
            barrier.wait()
            results[index] = request()
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def assert_error(response, status, code, param=None):
    """The contract's error envelope: JSON, the code and param, and the request id of the header."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert error["param"] == param
    assert error["request_id"] == response["X-Request-Id"]
    assert error["request_id"].startswith("req_")
    return error


@pytest.fixture(autouse=True)
def fresh_auth_failure_counts():
    """Failed authentications are counted per process: each test starts with none."""
    auth_failures.reset()


@pytest.fixture(autouse=True)
def quick_meta_retries(monkeypatch):
    """Retries keep their count and order in tests, without the real backoff's waiting."""
    monkeypatch.setattr("meta.graph.client.BACKOFF_FIRST", 0.001)
    monkeypatch.setattr("meta.graph.client.RETRY_AFTER", dict.fromkeys(meta_graph.client.RETRY_AFTER, 0.001))


@pytest.fixture(autouse=True)
def no_meta_call_in_a_transaction(settings):
    """A call to Meta inside a database transaction fails the test (core/db/waiting.py)."""
    settings.META_FORBID_IN_TRANSACTION = True


@pytest.fixture
def org(db):
    return Org.objects.create(name="Toko Kopi", slug="toko-kopi")


@pytest.fixture
def other_org(db):
    return Org.objects.create(name="Other Co", slug="other-co")


def _number(org, phone_number_id):
    return PhoneNumber.objects.create(
        org=org,
        phone_number_id=phone_number_id,
        display_phone_number=f"+62 811 {phone_number_id[-4:]}",
        access_token=f"EAAG-secret-token-{phone_number_id}",
    )


@pytest.fixture
def phone_number(org):
    return _number(org, PHONE_NUMBER_ID)


@pytest.fixture
def second_number(org):
    return _number(org, "106540352242923")


@pytest.fixture
def foreign_number(other_org):
    return _number(other_org, "209999999999999")


@pytest.fixture
def api_key_secret(org):
    return ApiKey.issue(org=org, name="tests")[1]


@pytest.fixture
def api(api_key_secret):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_secret}")
    return client


@pytest.fixture
def role_groups(db):
    """The role groups as their migration makes them: a transactional test's flush drops them."""
    importlib.import_module("inbox.migrations.0009_memberships").create_role_groups(django_apps, None)
    importlib.import_module("inbox.migrations.0012_inbox_replies").grant_roles(django_apps, None)
    importlib.import_module("outbox.migrations.0003_grant_managers").grant_managers(django_apps, None)
    importlib.import_module("inbox.migrations.0025_audit_log").grant_managers(django_apps, None)
    importlib.import_module("inbox.migrations.0022_team_inbox").grant_roles(django_apps, None)
    importlib.import_module("inbox.migrations.0026_meta2026").grant_roles(django_apps, None)


@pytest.fixture
def make_member(role_groups):
    """A staff user in the org with the role (and so in the role's group), as `add_member` makes one."""

    def make(org, role=Role.AGENT, username=None):
        return member_add(org=org, username=username or f"{role}-{org.slug}", role=role, password=STAFF_PASSWORD)[0]

    return make


def logged_in(user):
    client = Client()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def make_message():
    """Create a message; inbound and unread unless told otherwise, one minute after the previous one."""
    start = timezone.now() - timedelta(days=1)
    sequence = itertools.count(1)

    def make(phone_number, *, contact="6281200000001", direction=Direction.INBOUND, status=None, **fields):
        n = next(sequence)
        fields.setdefault("timestamp", start + timedelta(minutes=n))
        fields.setdefault("text", f"message {n}")
        fields.setdefault("type", "text")
        message = Message.objects.create(
            org=phone_number.org,
            phone_number=phone_number,
            wamid=f"wamid.TEST{n:06d}",
            direction=direction,
            status=status or (Status.RECEIVED if direction == Direction.INBOUND else Status.SENT),
            contact_wa_id=contact,
            **fields,
        )
        conversations_touch([message])
        return message

    return make


def wait_for(condition, seconds=10, every=0.02):
    """Whether `condition()` came true within `seconds`, asked every `every` seconds (and once more
    at the end): for what another process or thread does in its own time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return bool(condition())
