"""A worker killed with SIGKILL in the middle of a call to Meta, as by the OOM killer or a host going
away: what it claimed settles within the claim's lease (short here), nothing is sent twice, and no
transaction is left behind. Real gunicorn processes on PostgreSQL, the stand-in in this process."""

import os
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import postgres_only
from inbox.models import Message, Status

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True)]

LEASE = 3  # seconds; production's is 30
SHORT_LEASE = {"META_CLAIM_LEASE": str(LEASE), "META_RETRY_BUDGET": "2", "META_TIMEOUT": "2"}


def kill_workers(arbiter):
    """SIGKILL every worker of this gunicorn; its master starts new ones."""
    pids = subprocess.check_output(["ps", "-o", "pid=", "--ppid", str(arbiter.pid)], text=True)
    for pid in pids.split():
        os.kill(int(pid), signal.SIGKILL)


def wait_for(condition, seconds=10):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def post_in_background(url, api_key_secret, phone_number, body):
    """Fire a request that will be cut off; its answer (a dropped connection) does not matter."""

    def post():
        try:
            requests.post(f"{url}/v1/{phone_number.phone_number_id}/messages", json=body, timeout=30,
                          headers={"Authorization": f"Bearer {api_key_secret}"})  # fmt: skip
        except requests.RequestException:
            pass

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread


def test_a_receipt_cut_off_by_kill_9_is_read_by_the_next_request_within_the_lease(
    start_gunicorn, stand_in, api_key_secret, phone_number, make_message
):
    url = start_gunicorn(workers=1, **SHORT_LEASE)
    message = make_message(phone_number)
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": message.wamid}
    stand_in.state.latency = 1.5  # Meta is slow: the worker dies waiting for it
    post_in_background(url, api_key_secret, phone_number, body)
    wait_for(lambda: len(stand_in.state.requests) == 1)

    kill_workers(start_gunicorn.arbiter[url])
    stand_in.state.latency = 0
    cut_off = Message.objects.get(pk=message.pk)
    assert (cut_off.status, cut_off.claim_token is not None) == (Status.RECEIVED, True)  # claimed, not locked

    started = time.monotonic()
    retry = None
    while retry is None or retry.status_code != 200:  # until gunicorn's new worker answers
        try:
            retry = requests.post(f"{url}/v1/{phone_number.phone_number_id}/messages", json=body, timeout=30,
                                  headers={"Authorization": f"Bearer {api_key_secret}"})  # fmt: skip
        except requests.ConnectionError:
            time.sleep(0.1)
    assert time.monotonic() - started < LEASE + 2
    assert retry.json()["data"]["status"] == "read"
    assert Message.objects.get(pk=message.pk).status == Status.READ
    assert len(stand_in.state.requests) == 2  # the dead worker's receipt, then the one that took over
