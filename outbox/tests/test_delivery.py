"""The delivery engine with the subscriber mocked: signatures, the status-code rules, retries and
dead letters, leases, bounded concurrency per subscription, the sweeper and the URL guard."""

import hashlib
import hmac
import io
import json
from datetime import timedelta

import pytest
import requests
import responses
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from outbox import delivery as engine
from outbox.models import Delivery, DeliveryAttempt, DeliveryStatus, Event, EventType, SweeperClock
from outbox.record import events_record
from outbox.tests.conftest import HOOK_URL, make_subscription, run_due


def record_read(org, data=None):
    return events_record(EventType.MESSAGE_READ, {org.pk: data or {"message": {"id": "msg_X"}}})[0]


def record_received(org, body=None):
    body = body or {"object": "whatsapp_business_account", "entry": []}
    return events_record(EventType.MESSAGE_RECEIVED, {org.pk: body})[0]


def kirim_signature_verifies(secret, headers, body):
    parts = headers["X-Kirim-Signature"].split(",")
    timestamp = parts[0].removeprefix("t=")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(p.removeprefix("v1="), expected) for p in parts[1:])


def test_a_delivery_carries_every_header_and_each_signature_verifies(org, subscription, receiver):
    receiver.post(HOOK_URL, status=200)
    event = record_received(org, {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": []}]})

    assert run_due() == 1

    request = receiver.calls[0].request
    delivery = Delivery.objects.get()
    headers, body = request.headers, request.body
    assert headers["X-Kirim-Event"] == "message.received"
    assert headers["X-Kirim-Source"] == "meta"
    assert headers["X-Kirim-Event-Id"] == event.external_id
    assert headers["X-Kirim-Delivery-Id"] == delivery.external_id == headers["webhook-id"]
    assert headers["X-Kirim-Attempt"] == "1"
    assert json.loads(body) == json.loads(event.body)
    assert Webhook(subscription.secret).verify(body, dict(headers)) == json.loads(body)
    assert kirim_signature_verifies(subscription.secret, headers, body)
    meta = "sha256=" + hmac.new(subscription.secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Hub-Signature-256"] == meta
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.last_status_code == 200


def test_kirims_own_events_are_signed_by_every_scheme_too(org, subscription, receiver):
    """A handler written for Meta's webhooks checks X-Hub-Signature-256 first: on Kirim's own events
    too, it finds one that verifies, and refuses the body for what it is, not for a missing header."""
    receiver.post(HOOK_URL, status=204)
    record_read(org)
    run_due()

    request = receiver.calls[0].request
    headers, body = request.headers, request.body
    assert headers["X-Kirim-Source"] == "kirim"
    assert headers["X-Hub-Signature-256"] == "sha256=" + hmac.new(subscription.secret.encode(), body,
                                                                  hashlib.sha256).hexdigest()  # fmt: skip
    assert Webhook(subscription.secret).verify(body, dict(headers)) == json.loads(body)
    assert kirim_signature_verifies(subscription.secret, headers, body)


def test_500_twice_then_200_arrives_on_attempt_3_with_the_same_webhook_id(org, subscription, receiver):
    receiver.post(HOOK_URL, status=500, body="oops")
    receiver.post(HOOK_URL, status=500)
    receiver.post(HOOK_URL, status=200)
    record_read(org)

    run_due()

    attempts = [c.request.headers["X-Kirim-Attempt"] for c in receiver.calls]
    assert attempts == ["1", "2", "3"]
    assert len({c.request.headers["webhook-id"] for c in receiver.calls}) == 1
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 3)
    log = list(delivery.attempt_log.values_list("status_code", "response_excerpt"))
    assert log == [(500, "oops"), (500, ""), (200, "")]


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 408},
        {"status": 429},
        {"status": 503},
        {"status": 302, "headers": {"Location": "http://169.254.169.254/"}},
        {"body": requests.ConnectionError("connection reset by peer")},
        {"body": requests.ReadTimeout("read timed out")},
    ],
)
def test_transient_answers_are_retried_and_redirects_not_followed(org, subscription, receiver, answer):
    receiver.post(HOOK_URL, **answer)
    receiver.post(HOOK_URL, status=200)
    record_read(org)

    run_due()

    assert [c.request.url for c in receiver.calls] == [HOOK_URL, HOOK_URL]
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


def test_a_4xx_fails_at_once(org, subscription, receiver):
    receiver.post(HOOK_URL, status=400, body="bad signature")
    record_read(org)

    run_due()

    assert len(receiver.calls) == 1
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.last_status_code, delivery.last_error) == (DeliveryStatus.FAILED, 400, "HTTP 400")
    subscription.refresh_from_db()
    assert subscription.enabled and subscription.failure_streaks == {"message.read": 1}


def test_410_disables_the_subscription_and_says_why(org, subscription, receiver):
    receiver.post(HOOK_URL, status=410)
    record_read(org)
    record_read(org)

    run_due()

    assert len(receiver.calls) == 1  # the second delivery finds the subscription disabled
    subscription.refresh_from_db()
    assert not subscription.enabled
    assert "410 Gone" in subscription.disabled_reason
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.FAILED}


def test_a_retry_waits_the_schedule_jittered_and_honours_retry_after(org, subscription, receiver, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [10.0, 30.0]
    receiver.post(HOOK_URL, status=500)
    record_read(org)
    before = timezone.now()

    run_due()

    wait = (Delivery.objects.get().next_attempt_at - before).total_seconds()
    assert 8 <= wait <= 12.5  # 10 s ± 20%
    receiver.replace(responses.POST, HOOK_URL, status=429, headers={"Retry-After": "120"})
    Delivery.objects.update(next_attempt_at=timezone.now())
    run_due()
    wait = (Delivery.objects.get().next_attempt_at - timezone.now()).total_seconds()
    assert 115 <= wait <= 120


def test_every_attempt_failing_leaves_a_dead_letter(org, subscription, receiver, settings):
    receiver.post(HOOK_URL, status=502)
    record_read(org)

    run_due()

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DEAD, 8)  # immediate, then 7 retries
    assert delivery.finished_at is not None and delivery.next_attempt_at is None


def refusing(event_type):
    """A receiver that refuses `event_type` (400) and takes every other type (200)."""

    def answer(request):
        return (400 if request.headers["X-Kirim-Event"] == event_type else 200), {}, ""

    return answer


def test_a_type_its_receiver_refuses_never_stops_the_types_it_accepts(org, subscription, receiver):
    """24 reads refused in a row (a batch_read, say) stop message.read for this subscription alone:
    the messages that come next still arrive."""
    receiver.add_callback(responses.POST, HOOK_URL, callback=refusing("message.read"))
    for _ in range(24):
        record_read(org)
    run_due()
    subscription.refresh_from_db()
    assert subscription.enabled and subscription.disabled_reason == ""

    record_received(org)
    assert events_record(EventType.MESSAGE_READ, {org.pk: {}}) == []  # stopped: nobody to record it for
    run_due()

    subscription.refresh_from_db()
    assert "24 failed deliveries in a row" in subscription.disabled_events["message.read"]
    assert list(subscription.disabled_events) == ["message.read"]
    assert Delivery.objects.get(event_type="message.received").status == DeliveryStatus.DELIVERED
    assert Delivery.objects.filter(event_type="message.read").count() == 24
    assert len(receiver.calls) == 25


def test_failures_count_in_a_row_per_event_type(org, subscription, receiver):
    """Another type's successes in between do not end a type's streak; its own success does."""
    receiver.add_callback(responses.POST, HOOK_URL, callback=refusing("message.read"))
    for _ in range(23):
        record_read(org)
        record_received(org)
    run_due()
    subscription.refresh_from_db()
    assert subscription.failure_streaks == {"message.read": 23} and not subscription.disabled_events

    record_read(org)
    run_due()

    subscription.refresh_from_db()
    assert list(subscription.disabled_events) == ["message.read"] and subscription.enabled


def test_when_every_type_it_lists_is_stopped_the_subscription_is_disabled(org, receiver):
    subscription = make_subscription(org, events=["message.read"])
    receiver.post(HOOK_URL, status=404)
    for _ in range(24):
        record_read(org)

    run_due()

    subscription.refresh_from_db()
    assert not subscription.enabled
    assert "each event type failed 24 deliveries in a row" in subscription.disabled_reason


def test_a_success_ends_the_failure_streak(org, subscription, receiver):
    receiver.post(HOOK_URL, status=404)
    receiver.post(HOOK_URL, status=200)
    record_read(org)
    run_due()
    record_read(org)
    run_due()

    subscription.refresh_from_db()
    assert subscription.failure_streaks == {}


def test_during_a_rotation_both_secrets_sign(org, subscription, receiver):
    old = subscription.secret
    subscription.previous_secret, subscription.secret = old, "whsec_" + "A" * 43 + "="
    subscription.previous_secret_expires_at = timezone.now() + timedelta(hours=24)
    subscription.save()
    receiver.post(HOOK_URL, status=200)
    record_read(org)

    run_due()

    request = receiver.calls[0].request
    for secret in (old, subscription.secret):
        Webhook(secret).verify(request.body, dict(request.headers))
        assert kirim_signature_verifies(secret, request.headers, request.body)


def test_an_expired_lease_is_taken_over_and_the_late_worker_cannot_settle(org, subscription, receiver):
    receiver.post(HOOK_URL, status=200)
    record_read(org)
    delivery = Delivery.objects.get()
    stale = engine._claim(delivery.pk)  # a worker that then hangs, or dies
    Delivery.objects.update(leased_until=timezone.now() - timedelta(seconds=1))

    run_due()
    engine._settle(stale, engine.subscriber_http.Answer(500, 10))  # the first worker wakes up late

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 2)
    assert [c.request.headers["X-Kirim-Attempt"] for c in receiver.calls] == ["2"]


def test_a_url_that_now_resolves_to_a_private_address_is_not_called(org, subscription, receiver, monkeypatch):
    def rebound(host, port):
        return {"93.184.215.14", "10.0.0.5"}

    monkeypatch.setattr("outbox.subscriber_http.resolve", rebound)
    record_read(org)

    run_due(max_rounds=1)

    assert not receiver.calls
    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code is None and "private" in attempt.error


def test_the_sweeper_re_enqueues_orphaned_and_overdue_deliveries_once(org, subscription, settings):
    from django_tasks_db.models import DBTaskResult

    settings.WEBHOOK_SWEEP_INTERVAL = 15
    record_read(org)
    record_read(org)
    long_ago = timezone.now() - timedelta(minutes=5)
    orphan, overdue = Delivery.objects.order_by("pk")
    Delivery.objects.filter(pk=orphan.pk).update(leased_until=long_ago, attempts=1)
    Delivery.objects.filter(pk=overdue.pk).update(next_attempt_at=long_ago)

    engine.ensure_sweeper()
    engine.ensure_sweeper()  # the chain is alive: no second one
    token = SweeperClock.objects.get().token
    assert engine.sweep_once(token) == 2
    assert engine.sweep_once(token) == 0  # a stale token does nothing

    queued = [r.args_kwargs["args"] for r in DBTaskResult.objects.filter(task_path__endswith="deliver")]
    assert sorted(queued) == sorted([[orphan.pk], [overdue.pk]])
    sweeps = DBTaskResult.objects.filter(task_path__endswith="sweep")
    assert sweeps.count() == 2  # the first one, and the next one it scheduled


def test_purge_expired_keeps_dead_letters_30_days(org, subscription, receiver):
    from django.core.management import call_command

    receiver.post(HOOK_URL, status=502)
    for _ in range(2):
        record_read(org)
    run_due()
    old, recent = Delivery.objects.order_by("pk")
    Delivery.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=31))
    Event.objects.filter(pk=old.event_id).update(created_at=timezone.now() - timedelta(days=32))
    Delivery.objects.filter(pk=recent.pk).update(finished_at=timezone.now() - timedelta(days=29))

    call_command("purge_expired", stdout=io.StringIO())

    assert list(Delivery.objects.values_list("pk", "status")) == [(recent.pk, DeliveryStatus.DEAD)]
    assert Event.objects.count() == 1
