"""Deleting a subscription and replaying deliveries while workers attempt them, on PostgreSQL: every
transaction locks a subscription before its deliveries (outbox.models.SubscriptionQuerySet), so
none waits on another in a circle. Each test holds one side just before the statement that once
closed the circle, until the other side waits on a lock (or has finished), then lets it go."""

import contextlib
import threading

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from conftest import logged_in, postgres_only, wait_for
from outbox.delivery import attempt_delivery
from outbox.models import Delivery, DeliveryAttempt, EventType, WebhookSubscription
from outbox.record import events_record
from outbox.tests.conftest import HOOK_URL

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True)]


def another_waits_on_a_lock():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # else a transaction sees its first look again
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock')"
        )
        return cursor.fetchone()[0]


@contextlib.contextmanager
def held_before(statement, reached, until):
    """In this thread, the first statement starting with `statement` sets `reached` and waits until
    `until()` holds (or 10 s have passed) before it runs."""

    def hold(execute, sql, params, many, context):
        if sql.startswith(statement) and not reached.is_set():
            reached.set()
            wait_for(until)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(hold):
        yield


def side_by_side(first, second, *, hold_first_before):
    """Run `first` in a thread, held before `hold_first_before`; once it is held, run `second` in
    another. Returns (first's result, second's result); an exception of either is raised."""
    reached, second_done, results = threading.Event(), threading.Event(), {}

    def run(name, job, done=None):
        try:
            results[name] = job()
        except Exception as error:  # noqa: BLE001 (raised again below, in the test's thread)
            results[name] = error
        finally:
            connection.close()
            if done is not None:
                done.set()

    def held_first():
        with held_before(hold_first_before, reached, lambda: another_waits_on_a_lock() or second_done.is_set()):
            return first()

    threads = [threading.Thread(target=run, args=("first", held_first))]
    threads[0].start()
    assert reached.wait(10), f"the first never reached {hold_first_before}"
    threads.append(threading.Thread(target=run, args=("second", second, second_done)))
    threads[1].start()
    for thread in threads:
        thread.join(30)
    for result in results.values():
        if isinstance(result, Exception):
            raise result
    return results["first"], results["second"]


@pytest.fixture
def pending(org, subscription):
    """Three pending deliveries of the subscription."""
    for _ in range(3):
        events_record(EventType.MESSAGE_READ, {org.pk: {}})
    return list(Delivery.objects.order_by("pk"))


def delete_by_api(api_key_secret, subscription):
    def delete():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_secret}")
        return client.delete(f"/v1/webhook_subscriptions/{subscription.external_id}").status_code

    return delete


def delete_in_the_admin(manager, subscription):
    def delete():
        client = logged_in(manager)
        url = reverse("admin:outbox_webhooksubscription_delete", args=[subscription.pk])
        return client.post(url, {"post": "yes"}).status_code

    return delete


def delete_by_admin_action(manager, subscription):
    def delete():
        client = logged_in(manager)
        body = {"action": "delete_selected", "_selected_action": [subscription.pk], "post": "yes"}
        return client.post(reverse("admin:outbox_webhooksubscription_changelist"), body).status_code

    return delete


DELETES = {
    "api": (delete_by_api, 200),
    "admin": (delete_in_the_admin, 302),
    "admin action": (delete_by_admin_action, 302),
}


@pytest.fixture(params=list(DELETES))
def delete(request, subscription, api_key_secret, django_user_model):
    """Each way to delete a subscription; in the admin as an operator, who may delete anything."""
    make, answer = DELETES[request.param]
    who = api_key_secret if request.param == "api" else django_user_model.objects.create_superuser("operator")
    return make(who, subscription), answer


def assert_gone(subscription):
    assert not WebhookSubscription.objects.filter(pk=subscription.pk).exists()
    assert not Delivery.objects.exists() and not DeliveryAttempt.objects.exists()


@pytest.mark.parametrize(
    ("receiver_status", "held_statement"),
    [
        # The claim locks the subscription, then takes the delivery; the delete once took the deliveries
        # first and then waited for the subscription: PostgreSQL broke the circle with a deadlock error.
        pytest.param(200, 'UPDATE "outbox_delivery"', id="claim"),
        # Settling a final answer counts it on the subscription's row, after writing the delivery's: it
        # locks the subscription first, as the delete's batches do.
        pytest.param(400, 'UPDATE "outbox_webhooksubscription"', id="settle"),
    ],
)
def test_a_delete_while_a_worker_attempts_a_delivery(
    subscription, pending, receiver, delete, receiver_status, held_statement
):
    receiver.post(HOOK_URL, status=receiver_status)
    delete, answer = delete

    _, status = side_by_side(lambda: attempt_delivery(pending[0].pk), delete, hold_first_before=held_statement)

    assert status == answer
    assert_gone(subscription)


def test_a_bulk_replay_while_its_subscription_is_deleted(api, subscription, pending, api_key_secret):
    """The replay's new deliveries hold off the delete, which then takes them too; a replay that comes
    second finds the subscription gone and replays nothing, never a 500."""
    replay = lambda: api.post("/v1/webhook_deliveries/replay", {}, format="json").status_code

    statuses = side_by_side(replay, delete_by_api(api_key_secret, subscription),
                            hold_first_before='INSERT INTO "outbox_delivery"')  # fmt: skip

    assert statuses == (201, 200)
    assert_gone(subscription)
    assert api.post("/v1/webhook_deliveries/replay", {}, format="json").json()["data"]["replayed"] == 0


def test_a_read_receipt_while_its_orgs_subscription_is_deleted(
    api, api_key_secret, subscription, phone_number, make_message, meta_accepts_reads
):
    """The receipt's `message.read` event holds off the delete, which then takes its delivery too; it
    used to be written for a subscription deleted meanwhile and fail at commit, a 500."""
    message = make_message(phone_number)
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": message.wamid}
    read = lambda: api.post(f"/v1/{phone_number.phone_number_id}/messages", body, format="json").status_code

    statuses = side_by_side(read, delete_by_api(api_key_secret, subscription),
                            hold_first_before='INSERT INTO "outbox_delivery"')  # fmt: skip

    assert statuses == (200, 200)
    assert_gone(subscription)
    message.refresh_from_db()
    assert message.status == "read"
