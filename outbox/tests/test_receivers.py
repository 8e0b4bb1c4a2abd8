"""Webhook handlers written for Meta's webhooks, from Python and npm libraries, subscribed to Kirim's
events as docs/guides/events-out.md says (a `meta` receiver) and run as their libraries document
them: pywa 4.5.0 with its handlers, whatsapp-api-js 6.3.0's node:http handler,
@kapso/whatsapp-cloud-api's verifySignature and normalizeWebhook, @great-detail/whatsapp's
eventNotification (tests/node/receivers.mjs). A contact whose name and text mix accents, emoji and
right-to-left script writes in, a send to them is delivered, and a read happens: each handler
verifies X-Hub-Signature-256 with the subscription's secret and parses the message and the status,
and none is sent Kirim's own events."""

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import pywa
import requests
from django.conf import settings

from conftest import free_port
from fakemeta.receiver import serve_in_thread
from inbox.models import Direction, Status
from outbox.models import Delivery, DeliveryStatus, WebhookSubscription
from outbox.tests.conftest import handled_by_pywa, run_due

CUSTOMER = "6281234567809"
USER_ID = "US.13491208655302741918"
NAME = "Zoë Ñúñez أحمد 🌙"
TEXT = "Café crème? ☕🥐 مرحبا، هل المقهى مفتوح؟ שלום 👋🏽"
INBOUND_WAMID = "wamid.HBgNNjI4MTIzNDU2NzgwORUCABIYFjNFQjBDNkQ3"


def meta_payload(phone_number, **value):
    """Meta's webhook of 2026 for this number: contacts carry the business-scoped user id."""
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "field": "messages",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "6281100000001", "phone_number_id": phone_number.phone_number_id},
                  "contacts": [{"profile": {"name": NAME}, "wa_id": CUSTOMER, "user_id": USER_ID}], **value},
    }]}]}  # fmt: skip


def now():
    return str(int(time.time()))


@pytest.fixture
def subscribe(api, settings):
    """Subscribe `url` through the API as the events-out guide does; the subscription."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # the handlers listen on loopback

    def subscribe(url, **fields):
        answer = api.post("/v1/webhook_subscriptions", {"url": url, **fields}, format="json")
        assert answer.status_code == 201, answer.content
        return WebhookSubscription.objects.get(external_id=answer.json()["data"]["id"])

    return subscribe


@pytest.fixture
def kirims_events(subscribe, deliver, api, phone_number, make_message, meta_accepts_reads):
    """Make a message, a status and a read happen, and run every delivery. A receiver that reads Kirim's
    envelope is subscribed beside the handlers, so the read is an event, and it alone gets it."""
    meta_accepts_reads.add_passthru("http://127.0.0.1")  # the subscribers
    kirim_reader = serve_in_thread(quiet=True)
    subscribe(kirim_reader.url, receiver="kirim", events=["message.read"])

    def happen():
        sent = make_message(phone_number, contact=CUSTOMER, direction=Direction.OUTBOUND, status=Status.ACCEPTED)
        text = {"from": CUSTOMER, "from_user_id": USER_ID, "id": INBOUND_WAMID, "timestamp": now(), "type": "text",
                "text": {"body": TEXT}}  # fmt: skip
        delivered = {"id": sent.wamid, "status": "delivered", "timestamp": now(), "recipient_id": CUSTOMER,
                     "recipient_user_id": USER_ID, "pricing": {"billable": True, "pricing_model": "PMP",
                                                               "category": "utility", "type": "regular"}}  # fmt: skip
        assert deliver(meta_payload(phone_number, messages=[text])).status_code == 200
        assert deliver(meta_payload(phone_number, statuses=[delivered])).status_code == 200
        read = {"messaging_product": "whatsapp", "status": "read", "message_id": INBOUND_WAMID}
        assert api.post(f"/v1/{phone_number.phone_number_id}/messages", read, format="json").status_code == 200
        run_due()
        assert [json.loads(body)["type"] for _, _, body in kirim_reader.received] == ["message.read"]
        return sent

    yield happen
    kirim_reader.shutdown()
    kirim_reader.server_close()


def assert_all_delivered_and_no_read_sent_to(subscription):
    deliveries = Delivery.objects.filter(subscription=subscription)
    assert sorted(deliveries.values_list("event_type", "status")) == [
        ("message.received", DeliveryStatus.DELIVERED),
        ("message.status", DeliveryStatus.DELIVERED),
    ]


# npm: whatsapp-api-js, @kapso/whatsapp-cloud-api, @great-detail/whatsapp --------------------------


@pytest.fixture
def npm_handler(node, subscribe):
    """`library`'s handler of tests/node/receivers.mjs, subscribed as a `meta` receiver: (subscription,
    a function answering what it parsed)."""
    started = []

    def start(library):
        port = free_port()
        subscription = subscribe(f"http://127.0.0.1:{port}/{library}", receiver="meta", description=library)
        process = subprocess.Popen(
            [node, Path(settings.BASE_DIR) / "tests" / "node" / "receivers.mjs"], cwd=settings.BASE_DIR,
            env={"PATH": "", "PORT": str(port), "SECRETS": json.dumps({library: subscription.secret})},
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        started.append(process)
        assert process.stdout.readline().strip() == "listening"
        return subscription, lambda: requests.get(f"http://127.0.0.1:{port}/received", timeout=10).json()

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("library", ["whatsapp-api-js", "kapso", "great-detail"])
def test_an_npm_handler_verifies_and_parses_the_message_and_the_status(library, npm_handler, kirims_events):
    subscription, parsed = npm_handler(library)

    sent = kirims_events()

    by_kind = {record.pop("kind"): record for record in parsed()}
    assert by_kind["message"] == {"library": library, "id": INBOUND_WAMID, "text": TEXT, "name": NAME}
    assert {k: by_kind["status"][k] for k in ("id", "status")} == {"id": sent.wamid, "status": "delivered"}
    assert len(parsed()) == 2
    assert_all_delivered_and_no_read_sent_to(subscription)


# pywa 4.5.0 -----------------------------------------------------------------------------------------


class PywaServer(ThreadingHTTPServer):
    """pywa's handlers behind a standard-library server: with `server=None`, pywa leaves HTTP to its
    caller, who hands each update to `webhook_update_validator`, then `webhook_update_handler`."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), PywaRequest)
        self.url = f"http://127.0.0.1:{self.server_port}/whatsapp"
        self.handle = self.handled = None

    def listen(self, phone_number, secret):
        self.handle, self.handled = handled_by_pywa(secret, phone_number.phone_number_id)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def ran(self):
        """What its handlers saw: ("message", text, name) and ("status", id, status, name)."""
        return [
            ("message", update.text, update.from_user.name)
            if isinstance(update, pywa.types.Message)
            else ("status", update.id, update.status.value, update.from_user.name)
            for update in self.handled
        ]


class PywaRequest(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        text, status = self.server.handle(body, self.headers.get("X-Hub-Signature-256"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(text.encode())))
        self.end_headers()
        self.wfile.write(text.encode())

    def log_message(self, format, *args):
        pass


@pytest.fixture
def pywa_handler(subscribe, phone_number):
    server = PywaServer()
    subscription = subscribe(server.url, receiver="meta", description="pywa")
    server.listen(phone_number, subscription.secret)
    yield server, subscription
    server.shutdown()
    server.server_close()


def test_pywa_runs_its_message_handler_for_message_received(pywa_handler, kirims_events):
    server, subscription = pywa_handler

    kirims_events()

    assert [r for r in server.ran if r[0] == "message"] == [("message", TEXT, NAME)]
    assert_all_delivered_and_no_read_sent_to(subscription)


def test_pywa_runs_its_status_handler_for_message_status(pywa_handler, kirims_events):
    server, _ = pywa_handler

    sent = kirims_events()

    assert [r for r in server.ran if r[0] == "status"] == [("status", sent.wamid, "delivered", NAME)]
