"""A worker killed with SIGKILL in the middle of a call to Meta, as by the OOM killer or a host going
away: what it claimed settles within the claim's lease (short here), nothing is sent twice, and no
transaction is left behind. Real gunicorn processes on PostgreSQL, the stand-in in this process."""

import contextlib
import os
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import free_port, postgres_only, wait_for
from inbox.models import Message, Status
from kirim.tests.conftest import running_stand_in

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True)]

LEASE = 3  # seconds; production's is 30
SHORT_LEASE = {"META_CLAIM_LEASE": str(LEASE), "META_RETRY_BUDGET": "2", "META_TIMEOUT": "2"}


def kill_workers(arbiter):
    """SIGKILL every worker of this gunicorn; its master starts new ones."""
    pids = subprocess.check_output(["ps", "-o", "pid=", "--ppid", str(arbiter.pid)], text=True)
    for pid in pids.split():
        os.kill(int(pid), signal.SIGKILL)


def post_in_background(url, api_key_secret, phone_number, body, headers=None):
    """Fire a request that will be cut off; its answer (a dropped connection) does not matter."""

    def post():
        with contextlib.suppress(requests.RequestException):
            requests.post(f"{url}/v1/{phone_number.phone_number_id}/messages", json=body, timeout=30,
                          headers=headers or {"Authorization": f"Bearer {api_key_secret}"})  # fmt: skip

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread


def test_a_receipt_cut_off_by_kill_9_is_read_by_the_next_request_within_the_lease(
    start_gunicorn, stand_in, api_key_secret, phone_number, make_message
):
    url = start_gunicorn(workers=1, **SHORT_LEASE)
    other_host = start_gunicorn(workers=1, **SHORT_LEASE)  # up already: no worker boot in the timing
    message = make_message(phone_number)
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": message.wamid}
    stand_in.state.latency = 1.5  # Meta is slow: the worker dies waiting for it
    post_in_background(url, api_key_secret, phone_number, body)
    assert wait_for(lambda: len(stand_in.state.requests) == 1)

    kill_workers(start_gunicorn.arbiter[url])
    stand_in.state.latency = 0
    cut_off = Message.objects.get(pk=message.pk)
    assert (cut_off.status, cut_off.claim_token is not None) == (Status.RECEIVED, True)  # claimed, not locked

    started = time.monotonic()
    retry = requests.post(f"{other_host}/v1/{phone_number.phone_number_id}/messages", json=body, timeout=30,
                          headers={"Authorization": f"Bearer {api_key_secret}"})  # fmt: skip
    assert retry.status_code == 200
    assert time.monotonic() - started < LEASE + 1  # it waited out the dead holder's lease, then read it
    assert retry.json()["data"]["status"] == "read"
    assert Message.objects.get(pk=message.pk).status == Status.READ
    assert len(stand_in.state.requests) == 2  # the dead worker's receipt, then the one that took over


def test_a_send_cut_off_by_kill_9_is_completed_by_its_status_webhook_and_never_sent_twice(
    settings, start_gunicorn, stand_in, api_key_secret, phone_number
):
    url = start_gunicorn(workers=1, **SHORT_LEASE)
    other_host = start_gunicorn(workers=1, **SHORT_LEASE)  # up already: no worker boot in the timing
    stand_in.state.webhook_url, stand_in.state.app_secret = f"{other_host}/webhooks/whatsapp", settings.META_APP_SECRET
    body = {"messaging_product": "whatsapp", "to": "6281234567890", "type": "text", "text": {"body": "Shipped!"}}
    key = {"Authorization": f"Bearer {api_key_secret}", "Idempotency-Key": "order-4411-shipped"}
    stand_in.state.latency = 1.5  # Meta takes the message; its answer comes too late for the worker
    post_in_background(url, api_key_secret, phone_number, body, key)
    assert wait_for(lambda: len(stand_in.state.requests) == 1)

    kill_workers(start_gunicorn.arbiter[url])
    stand_in.state.latency = 0
    # Meta's `sent` and `delivered` webhooks arrive: matched by Kirim's id in them.
    assert wait_for(lambda: Message.objects.filter(status=Status.DELIVERED).exists())
    message = Message.objects.get()
    assert message.wamid.startswith("wamid.")

    started = time.monotonic()
    messages_url = f"{other_host}/v1/{phone_number.phone_number_id}/messages"
    retry = requests.post(messages_url, json=body, headers=key, timeout=30)
    while retry.status_code == 409:  # the key's lease has not run out yet
        time.sleep(0.2)
        retry = requests.post(messages_url, json=body, headers=key, timeout=30)
    assert time.monotonic() - started < LEASE + 1
    assert retry.status_code == 200
    assert (retry.json()["data"]["status"], retry.json()["data"]["message_id"]) == ("delivered", message.wamid)
    assert len(stand_in.state.requests) == 1  # sent once, whatever the retries


def test_meta_unreachable_then_back_the_same_key_sends(start_gunicorn, api_key_secret, phone_number):
    url = start_gunicorn(workers=1, META_GRAPH_URL=f"http://127.0.0.1:{free_port()}/v23.0")  # nobody listens
    body = {"messaging_product": "whatsapp", "to": "6281234567890", "type": "text", "text": {"body": "Shipped!"}}
    key = {"Authorization": f"Bearer {api_key_secret}", "Idempotency-Key": "order-4411-shipped"}

    refused = requests.post(f"{url}/v1/{phone_number.phone_number_id}/messages", json=body, headers=key, timeout=30)
    assert refused.status_code == 502
    with running_stand_in() as stand_in:
        url = start_gunicorn(workers=1, META_GRAPH_URL=f"{stand_in.url}/v23.0")  # Meta is back
        sent = requests.post(f"{url}/v1/{phone_number.phone_number_id}/messages", json=body, headers=key, timeout=30)
        assert sent.status_code == 200 and sent.json()["data"]["status"] == "accepted"
        assert len(stand_in.state.requests) == 1
