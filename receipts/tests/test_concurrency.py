"""Exactly one Meta call for many identical receipts at once. The guarantee lives in a claim on the
message's row in PostgreSQL, so threads with their own database connections exercise it as processes
on other hosts would; nothing is held in the database while Meta answers."""

import threading
import time

import pytest
from django.db import connection
from rest_framework.test import APIClient

from conftest import fire_at_once, postgres_only
from inbox.models import Message, Status
from testing.meta import graph_messages_url

CONCURRENT_REQUESTS = 24


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_receipts_reach_meta_once(api_key_secret, phone_number, make_message, meta):
    earlier = make_message(phone_number)
    message = make_message(phone_number)

    def slow_success(request):
        time.sleep(0.2)  # hold the claim long enough for every other request to wait on it
        return 200, {}, '{"success": true}'

    meta.add_callback("POST", graph_messages_url(phone_number), callback=slow_success)

    def read():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_secret}")
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": message.wamid}
        response = client.post(f"/v1/{phone_number.phone_number_id}/messages", body, format="json")
        return response.status_code, response.json()["data"]

    results = fire_at_once(CONCURRENT_REQUESTS, read)

    assert len(meta.calls) == 1
    assert [status for status, _ in results] == [200] * CONCURRENT_REQUESTS
    assert all(data == results[0][1] for _, data in results)
    assert set(Message.objects.filter(pk__in=[earlier.pk, message.pk]).values_list("status", flat=True)) == {
        Status.READ
    }


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_receipts_for_different_messages_of_one_conversation_do_not_deadlock(
    api_key_secret, phone_number, make_message, meta_accepts_reads
):
    messages = [make_message(phone_number) for _ in range(12)]

    def read(message):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_secret}")
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": message.wamid}
        return client.post(f"/v1/{phone_number.phone_number_id}/messages", body, format="json").status_code

    pending = iter(messages)
    lock = threading.Lock()

    def next_read():
        with lock:
            message = next(pending)
        return read(message)

    assert fire_at_once(len(messages), next_read) == [200] * len(messages)
    assert not Message.objects.filter(status=Status.RECEIVED).exists()
    # Each receipt that found its message unread called Meta once; later ones may have read earlier ones.
    assert 1 <= len(meta_accepts_reads.calls) <= len(messages)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_nothing_is_held_in_the_database_while_meta_hangs(api, phone_number, make_message, meta):
    message = make_message(phone_number)
    meta_entered, meta_may_answer = threading.Event(), threading.Event()

    def hanging_meta(request):
        meta_entered.set()
        meta_may_answer.wait(10)
        return 200, {}, '{"success": true}'

    meta.add_callback("POST", graph_messages_url(phone_number), callback=hanging_meta)
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": message.wamid}
    answers = []
    reader = threading.Thread(target=lambda: answers.append(api.post(
        f"/v1/{phone_number.phone_number_id}/messages", body, format="json").status_code))  # fmt: skip
    reader.start()
    try:
        assert meta_entered.wait(10)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT state FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            states = [state for (state,) in cursor.fetchall()]
        claimed = Message.objects.get(pk=message.pk)
    finally:
        meta_may_answer.set()
        reader.join(10)

    assert not [s for s in states if s and s.startswith("idle in transaction")], states
    assert (claimed.status, claimed.claim_token is not None) == (Status.RECEIVED, True)  # a claim, not a lock
    assert answers == [200]
    read = Message.objects.get(pk=message.pk)
    assert (read.status, read.claim_token, read.claim_expires_at) == (Status.READ, None, None)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_claim_whose_holder_died_is_taken_over_when_its_lease_runs_out(
    api, phone_number, make_message, meta_accepts_reads
):
    message = make_message(phone_number)
    Message.objects.claim_unread(message.pk, lease=0.5)  # a holder that will never settle
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": message.wamid}

    started = time.monotonic()
    response = api.post(f"/v1/{phone_number.phone_number_id}/messages", body, format="json")

    assert response.status_code == 200
    assert 0.4 < time.monotonic() - started < 3  # it waited for the lease, then read it itself
    assert len(meta_accepts_reads.calls) == 1
    assert Message.objects.get(pk=message.pk).status == Status.READ
