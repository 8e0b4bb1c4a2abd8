"""Exactly one Meta call for many identical receipts at once. The guarantee lives in PostgreSQL's row
locks, so threads with their own database connections exercise it as processes on other hosts would."""

import threading
import time

import pytest
from rest_framework.test import APIClient

from conftest import fire_at_once, graph_messages_url, postgres_only
from inbox.models import Message, Status

CONCURRENT_REQUESTS = 24


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_receipts_reach_meta_once(api_key_secret, phone_number, make_message, meta):
    earlier = make_message(phone_number)
    message = make_message(phone_number)

    def slow_success(request):
        time.sleep(0.2)  # hold the lock long enough for every other request to queue behind it
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
