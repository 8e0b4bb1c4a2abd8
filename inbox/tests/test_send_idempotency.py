"""A send's Idempotency-Key: replays answer the first response with no second send, per org for
24 hours, and a key is neither burnt by a send Meta never received nor held by a request that died."""

import json
import threading
import time
from datetime import timedelta

import pytest
import requests
import urllib3
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import fire_at_once, postgres_only
from inbox.models import ApiKey, IdempotencyRecord, Message, Status
from inbox.tests.sends import meta_accepts_sends, send, text_body
from testing.meta import graph_messages_url


def test_a_replay_answers_the_first_response_without_a_second_send(api, phone_number, meta):
    meta_accepts_sends(meta, phone_number)

    first = send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="order-4411-confirm")
    again = send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="order-4411-confirm")

    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert again.json()["data"] == first.json()["data"]
    assert again.json()["request_id"] == again["X-Request-Id"] != first.json()["request_id"]
    assert Message.objects.count() == 1
    assert len(meta.calls) == 1


def test_a_failed_send_is_replayed_too(api, phone_number, meta):
    meta.post(graph_messages_url(phone_number), status=400, json={"error": {"message": "no", "code": 131030}})

    first = send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="k1")
    again = send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="k1")

    assert first.status_code == again.status_code == 502
    assert again.json()["error"]["upstream"] == first.json()["error"]["upstream"]
    assert len(meta.calls) == 1 and Message.objects.count() == 1


def test_the_same_key_with_another_body_is_422(api, phone_number, meta):
    meta_accepts_sends(meta, phone_number)
    send(api, phone_number, text_body("one"), HTTP_IDEMPOTENCY_KEY="k1")

    response = send(api, phone_number, text_body("two"), HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reuse"
    assert len(meta.calls) == 1


def test_a_key_still_in_flight_is_409(api, org, phone_number, meta):
    meta_accepts_sends(meta, phone_number)
    send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="k1")
    IdempotencyRecord.objects.update(state=IdempotencyRecord.State.IN_PROGRESS)

    response = send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_in_progress"


def test_keys_are_per_org_and_expire_after_24_hours(api, phone_number, foreign_number, other_org, meta):
    meta_accepts_sends(meta, phone_number, "wamid.A")
    meta_accepts_sends(meta, foreign_number, "wamid.B")
    send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="shared")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKey.issue(org=other_org)[1]}")
    assert "Idempotent-Replayed" not in send(other, foreign_number, text_body(), HTTP_IDEMPOTENCY_KEY="shared")

    IdempotencyRecord.objects.filter(org=phone_number.org).update(expires_at=timezone.now() - timedelta(seconds=1))
    meta_accepts_sends(meta, phone_number, "wamid.C")
    fresh = send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="shared")
    assert "Idempotent-Replayed" not in fresh
    assert Message.objects.count() == 3


def test_an_overlong_key_is_400(api, phone_number, meta):
    response = send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert response.json()["error"]["param"] == "Idempotency-Key"


def test_validation_errors_do_not_burn_the_key(api, phone_number, meta):
    meta_accepts_sends(meta, phone_number)
    assert send(api, phone_number, text_body(""), HTTP_IDEMPOTENCY_KEY="k1").status_code == 400
    assert send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="k1").status_code == 200


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_with_one_key_make_one_row_and_one_meta_call(api_key_secret, phone_number, meta):
    def slow_accept(request):
        time.sleep(0.3)
        return 200, {}, json.dumps({"messaging_product": "whatsapp", "messages": [{"id": "wamid.ONCE"}]})

    meta.add_callback("POST", graph_messages_url(phone_number), callback=slow_accept)
    lock = threading.Lock()

    def post():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_secret}")
        response = send(client, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="same-key")
        with lock:
            return response.status_code

    statuses = fire_at_once(12, post)

    assert len(meta.calls) == 1
    assert Message.objects.count() == 1
    assert statuses.count(200) >= 1
    assert set(statuses) <= {200, 409}


def test_a_send_meta_never_received_does_not_burn_its_key(api, phone_number, meta, settings):
    settings.META_MAX_ATTEMPTS = 1
    never_connected = requests.ConnectionError(
        urllib3.exceptions.MaxRetryError(None, "/", urllib3.exceptions.NewConnectionError(None, "refused"))
    )
    meta.post(graph_messages_url(phone_number), body=never_connected)

    unreachable = send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="order-4412")

    assert unreachable.status_code == 502
    assert Message.objects.get().status == Status.FAILED  # truly: it was never sent
    meta.replace("POST", graph_messages_url(phone_number),
                 json={"messaging_product": "whatsapp", "messages": [{"id": "wamid.BACK"}]})  # fmt: skip

    back = send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="order-4412")

    assert back.status_code == 200 and "Idempotent-Replayed" not in back
    assert back.json()["data"]["message_id"] == "wamid.BACK"
    assert len(meta.calls) == 2
    assert send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="order-4412").json()["data"]["message_id"] == (
        "wamid.BACK"
    )
    assert len(meta.calls) == 2


def test_a_key_whose_request_died_mid_send_is_taken_over_after_its_lease_without_sending_again(api, phone_number, meta):
    meta_accepts_sends(meta, phone_number)
    send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="order-4413")
    # As a worker killed during Meta's call leaves them: the key in progress, the message pending,
    # both leases run out.
    expired = timezone.now() - timedelta(seconds=1)
    IdempotencyRecord.objects.update(state=IdempotencyRecord.State.IN_PROGRESS, lease_expires_at=expired)
    Message.objects.update(status=Status.PENDING, wamid=None, claim_expires_at=expired)

    retry = send(api, phone_number, text_body(), HTTP_IDEMPOTENCY_KEY="order-4413")

    assert retry.status_code == 202
    assert retry.json()["data"]["status"] == "unconfirmed"
    assert len(meta.calls) == 1  # Meta may have it: never a second call
    assert Message.objects.get().status == Status.UNCONFIRMED
