"""Fixtures shared by every app's tests: orgs, numbers, keys, messages, and Meta mocked by `responses`."""

import contextlib
import importlib
import io
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

import pytest
import responses
from django.apps import apps as django_apps
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models import BinaryField, CharField, TextField, UUIDField
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from fakemeta import payloads
from inbox.models import ApiKey, Direction, Message, Org, PhoneNumber, Role, Status
from inbox.services.inbound_rows import conversations_touch
from kirim.wsgi import application  # imported now: django.setup() configures logging anew (caplog's handler)
from meta import graph as meta_graph
from meta.payloads import split_callback_data
from orgs.members import member_add
from orgs.ratelimit import auth_failures

STAFF_PASSWORD = "correct horse battery"
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


def as_the_client_sent_it(sent):
    """A send's body as Meta received it, with Kirim's id taken back out of biz_opaque_callback_data
    (every send carries one: asserted here), so a test compares it with the client's own body."""
    message_id, callers_own = split_callback_data(sent.get("biz_opaque_callback_data"))
    assert message_id is not None and message_id.startswith("msg_"), sent
    body = {name: value for name, value in sent.items() if name != "biz_opaque_callback_data"}
    return body if callers_own is None else {**body, "biz_opaque_callback_data": callers_own}


def graph_messages_url(phone_number):
    return f"{settings.META_GRAPH_URL}/{phone_number.phone_number_id}/messages"


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
    return _number(org, "106540352242922")


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


def migrate(targets):
    """Migrate the test database to `targets` (pairs of app label and migration name); their apps as
    they were then, for rows made the way that release made them."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def migrate_to_latest():
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def wait_for(condition, seconds=10, every=0.02):
    """Whether `condition()` came true within `seconds`, asked every `every` seconds (and once more
    at the end): for what another process or thread does in its own time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return bool(condition())


# --- Secret columns, for the tests that ask every admin and API list about them --------------------

# Names that say "secret" in a column, whichever model it is on.
SECRET_NAME = re.compile(r"secret|token|digest|password|credential|hash|session_key")
SECRET_TYPES = (CharField, TextField, UUIDField, BinaryField)
# Columns with such a name that are not secrets, and why.
NOT_SECRETS = {(Message, "claim_token"): "a lease's id, held for seconds: it opens nothing"}
SECRET_LOOKUPS = ("", "__exact", "__startswith", "__istartswith", "__contains", "__regex", "__gte", "__in", "__isnull")


def secret_columns(model):
    """The model's columns that hold a secret: those it declares, and any named like one."""
    for field in model._meta.get_fields():
        declared = field.name in getattr(model, "secret_fields", ())
        named = isinstance(field, SECRET_TYPES) and SECRET_NAME.search(field.name)
        if (declared or named) and (model, field.name) not in NOT_SECRETS:
            yield field.name


def paths_to_secrets(model, relations=2, seen=()):
    """Every lookup path from `model` to a secret column, over up to `relations` relations either way
    (`phone_number__org__api_keys__digest` is three)."""
    yield from secret_columns(model)
    if not relations:
        return
    for field in model._meta.get_fields():
        if field.is_relation and field.related_model not in (None, model, *seen):
            for path in paths_to_secrets(field.related_model, relations - 1, (*seen, model)):
                yield f"{field.name}__{path}"


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


@pytest.fixture
def meta():
    """Meta's Graph API, mocked: any request not registered fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def meta_confirms_number(meta, phone_number_id, *, token, waba_id="", display_phone_number="+62 811 0000 0001"):
    """Meta's answers, to `token` only, that confirm a number: its fields and, given a WABA, its
    numbers listing this one. Anything else asked of Meta fails the test."""
    with_token = [responses.matchers.header_matcher({"Authorization": f"Bearer {token}"})]
    number = {"id": phone_number_id, "display_phone_number": display_phone_number, "verified_name": "Toko Kopi"}
    meta.get(f"{settings.META_GRAPH_URL}/{phone_number_id}", json=number, match=with_token)
    if waba_id:
        listed = {"data": [{"id": phone_number_id}], "paging": {"cursors": {"before": "QVFI", "after": "QVFI"}}}
        meta.get(f"{settings.META_GRAPH_URL}/{waba_id}/phone_numbers", json=listed, match=with_token)


@pytest.fixture
def meta_accepts_reads(meta, phone_number):
    meta.post(graph_messages_url(phone_number), json={"success": True})
    return meta


@pytest.fixture
def meta_stand_in(settings, live_server):
    """The project's local Meta stand-in on a free port, with META_GRAPH_URL pointing at it and its
    webhooks going to the live server."""
    from fakemeta.server import make_server

    server = make_server(
        port=0, webhook_url=f"{live_server.url}/webhooks/whatsapp", app_secret=settings.META_APP_SECRET
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_port}"
    settings.META_GRAPH_URL = f"{server.url}/v23.0"
    yield server
    server.shutdown()
    server.server_close()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@contextlib.contextmanager
def chromium():
    """A headless Chromium of its own (a second staff member's, say); skipped where it is missing."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("no browser: install Debian's chromium and chromium-driver (.ci/run does)")
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="kirim-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", "--window-size=1280,860", f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request the page makes
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except WebDriverException as error:
        pytest.skip(f"headless Chromium did not start: {error.msg}")
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium through Selenium; skipped, saying why, where it is missing."""
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="session")
def node():
    """The node binary, with the npm libraries of package-lock.json installed (`npm ci`, which `make
    test` runs where npm is); skipped, saying why, where either is missing, and failed in CI."""
    path = shutil.which("node")
    reason = None
    if path is None or int(subprocess.check_output([path, "--version"], text=True)[1:].split(".")[0]) < 20:
        reason = "needs node 20 or later on PATH (.ci/run installs it)"
    elif not (Path(settings.BASE_DIR) / "node_modules" / ".package-lock.json").exists():
        reason = "needs the npm libraries of package-lock.json: run `npm ci` (make test does where npm is)"
    if reason:
        pytest.fail(reason) if os.environ.get("CI") else pytest.skip(reason)
    return path
