"""/v1/webhook_subscriptions and /v1/webhook_deliveries: CRUD, the secret shown once, the URL guard,
errors in the contract's envelope, filters and cursor pages, replays, and tenancy."""

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from conftest import assert_error
from inbox.models import ApiKey
from outbox.models import Delivery, DeliveryAttempt, DeliveryStatus, EventType, WebhookSubscription
from outbox.record import events_record
from outbox.services import subscription_update
from outbox.tests.conftest import HOOK_URL, make_subscription, run_due

SUBSCRIPTIONS = "/v1/webhook_subscriptions"
DELIVERIES = "/v1/webhook_deliveries"


def create(api, **fields):
    body = {"url": HOOK_URL, "events": ["message.received", "message.read"], "description": "CRM", **fields}
    return api.post(SUBSCRIPTIONS, body, format="json")


def test_create_answers_the_subscription_with_its_secret_once(api, org):
    response = create(api)

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["id"].startswith("wbs_") and data["object"] == "webhook_subscription"
    assert data["secret"].startswith("whsec_")
    assert data["events"] == ["message.read", "message.received"]
    assert (data["enabled"], data["url"], data["description"]) == (True, HOOK_URL, "CRM")
    assert WebhookSubscription.objects.get().secret == data["secret"]

    listed = api.get(SUBSCRIPTIONS).json()["data"]
    shown = api.get(f"{SUBSCRIPTIONS}/{data['id']}").json()["data"]
    assert [s["id"] for s in listed] == [data["id"]]
    assert "secret" not in listed[0] and "secret" not in shown
    assert data["secret"] not in str(listed) + str(shown)


@pytest.mark.parametrize(
    "fields, code, param",
    [
        ({"url": "http://hooks.example.com/x"}, "invalid_field_value", "url"),
        ({"url": "https://127.0.0.1/x"}, "invalid_field_value", "url"),
        ({"url": "https://[::1]/x"}, "invalid_field_value", "url"),
        ({"url": "https://169.254.169.254/latest"}, "invalid_field_value", "url"),
        ({"url": "https://localhost/x"}, "invalid_field_value", "url"),
        ({"url": "https://user:pw@hooks.example.com/x"}, "invalid_field_value", "url"),
        ({"url": 7}, "invalid_field_value", "url"),
        ({"events": ["message.deleted"]}, "invalid_field_value", "events.0"),
        ({"events": []}, "invalid_field_value", "events"),
        ({"description": "x" * 501}, "invalid_field_value", "description"),
    ],
)
def test_bad_subscriptions_are_400_in_the_envelope(api, org, fields, code, param):
    assert_error(create(api, **fields), 400, code, param)
    assert not WebhookSubscription.objects.exists()


def test_a_host_resolving_to_a_private_address_is_refused_at_create(api, org, monkeypatch):
    monkeypatch.setattr(
        "outbox.subscriber_http.resolve",
        lambda host, port: {"192.168.1.20"},
    )
    error = assert_error(create(api), 400, "invalid_field_value", "url")
    assert "private" in error["message"]


def test_private_urls_and_plain_http_are_allowed_by_the_setting(api, org, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    assert create(api, url="http://127.0.0.1:9999/hook").status_code == 201


def test_a_missing_url_is_missing_required_field(api, org):
    assert_error(api.post(SUBSCRIPTIONS, {"events": ["message.read"]}, format="json"), 400, "missing_required_field",
                 "url")  # fmt: skip


def test_a_receiver_built_for_metas_webhooks_gets_only_what_it_parses_unless_it_asks_for_more(api, org):
    meta_handler = api.post(SUBSCRIPTIONS, {"url": HOOK_URL}, format="json")
    kirim_reader = api.post(SUBSCRIPTIONS, {"url": HOOK_URL, "receiver": "kirim"}, format="json")
    asked_for_reads = create(api)  # lists message.read, names no receiver

    assert meta_handler.status_code == kirim_reader.status_code == asked_for_reads.status_code == 201
    shown = [(r.json()["data"]["receiver"], r.json()["data"]["events"]) for r in (meta_handler, kirim_reader,
                                                                                  asked_for_reads)]  # fmt: skip
    assert shown == [
        ("meta", ["message.received", "message.status"]),
        (
            "kirim",
            [
                "conversation.assigned",
                "conversation.note_added",
                "conversation.state_changed",
                "message.read",
                "message.received",
                "message.status",
            ],
        ),  # every event, the team inbox's included
        ("kirim", ["message.read", "message.received"]),
    ]
    assert meta_handler.json()["data"]["disabled_events"] == {}
    events_record(EventType.MESSAGE_READ, {org.pk: {}})
    assert set(Delivery.objects.values_list("subscription__receiver", flat=True)) == {"kirim"}


def test_a_meta_receiver_listing_kirims_own_events_is_a_400_saying_how(api, org):
    error = assert_error(create(api, receiver="meta"), 400, "invalid_field_value", "events")
    assert "message.read" in error["message"] and '"receiver": "kirim"' in error["message"]

    meta_handler = api.post(SUBSCRIPTIONS, {"url": HOOK_URL}, format="json").json()["data"]
    url = f"{SUBSCRIPTIONS}/{meta_handler['id']}"
    assert_error(api.patch(url, {"events": ["message.read"]}, format="json"), 400, "invalid_field_value", "events")
    both = api.patch(url, {"receiver": "kirim", "events": ["message.read", "message.status"]}, format="json")
    assert both.status_code == 200, both.content
    assert_error(api.patch(url, {"receiver": "meta"}, format="json"), 400, "invalid_field_value", "events")
    assert_error(api.patch(url, {"receiver": "other"}, format="json"), 400, "invalid_field_value", "receiver")
    assert WebhookSubscription.objects.get().events == ["message.read", "message.status"]


def guide_subscriptions():
    """The bodies the events-out guide subscribes with before its first section, and the answer it shows."""
    guide = (Path(settings.BASE_DIR) / "docs" / "guides" / "events-out.md").read_text()
    section = guide.split("\n## ")[0]
    bodies = [json.loads(body) for body in re.findall(r"-d '(\{.*?\})'", section)]
    return bodies, json.loads(re.search(r"```json\n(.*?)\n```", section, re.DOTALL).group(1))


def test_the_guides_subscriptions_give_a_meta_handler_only_metas_events(api, org):
    bodies, shown = guide_subscriptions()

    answers = [api.post(SUBSCRIPTIONS, body, format="json") for body in bodies]

    assert [a.status_code for a in answers] == [201, 201]
    made = [a.json()["data"] for a in answers]
    assert [(s["receiver"], s["events"]) for s in made] == [
        ("meta", ["message.received", "message.status"]),
        ("kirim", ["message.read"]),
    ]
    unstable = ("id", "created_at", "secret")
    assert {k: v for k, v in made[0].items() if k not in unstable} == {
        k: v for k, v in shown["data"].items() if k not in unstable
    }


def test_enabling_again_resumes_the_event_types_kirim_stopped(api, subscription):
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        failure_streaks={"message.read": 24, "message.status": 3}, disabled_events={"message.read": "24 in a row"}
    )

    response = api.patch(f"{SUBSCRIPTIONS}/{subscription.external_id}", {"enabled": True}, format="json")

    assert response.status_code == 200 and response.json()["data"]["disabled_events"] == {}
    subscription.refresh_from_db()
    assert (subscription.enabled, subscription.disabled_events, subscription.failure_streaks) == (True, {}, {})


def test_patch_changes_fields_and_enabling_again_clears_why_it_was_disabled(api, subscription):
    subscription.enabled, subscription.disabled_reason, subscription.failure_streaks = False, "410 Gone", {"a": 24}
    subscription.save()

    response = api.patch(f"{SUBSCRIPTIONS}/{subscription.external_id}",
                         {"enabled": True, "events": ["message.status"]}, format="json")  # fmt: skip

    assert response.status_code == 200, response.content
    subscription.refresh_from_db()
    assert subscription.enabled and subscription.disabled_reason == "" and subscription.failure_streaks == {}
    assert subscription.events == ["message.status"]
    bad = api.patch(f"{SUBSCRIPTIONS}/{subscription.external_id}", {"enabled": "yes"}, format="json")
    assert_error(bad, 400, "invalid_field_value", "enabled")


def test_a_patch_from_a_copy_read_earlier_keeps_what_the_worker_wrote_since(subscription):
    """The delivery worker disables a subscription by UPDATE while a PATCH of its description, holding
    a copy read before, is under way: the PATCH writes its description and nothing else."""
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        enabled=False, disabled_reason="24 failures in a row", failure_streaks={"message.read": 24}
    )
    subscription_update(subscription, description="orders")  # `subscription` still says enabled

    subscription.refresh_from_db()
    assert (subscription.description, subscription.enabled) == ("orders", False)
    assert subscription.failure_streaks == {"message.read": 24}


def test_enabled_sent_again_for_an_enabled_subscription_keeps_its_failure_streak(api, subscription):
    """A client that PATCHes the whole object, `enabled: true` included, must not keep the worker from
    ever reaching the streak that disables a failing subscription."""
    WebhookSubscription.objects.filter(pk=subscription.pk).update(failure_streaks={"message.read": 7})

    response = api.patch(
        f"{SUBSCRIPTIONS}/{subscription.external_id}", {"enabled": True, "description": "all"}, format="json"
    )

    assert response.status_code == 200
    subscription.refresh_from_db()
    assert (subscription.enabled, subscription.description) == (True, "all")
    assert subscription.failure_streaks == {"message.read": 7}


def test_rotate_secret_shows_the_new_one_and_keeps_the_old_signing(api, subscription):
    old = subscription.secret

    response = api.post(f"{SUBSCRIPTIONS}/{subscription.external_id}/rotate_secret")

    new = response.json()["data"]["secret"]
    assert response.status_code == 200 and new != old and new.startswith("whsec_")
    subscription.refresh_from_db()
    assert subscription.signing_secrets() == [new, old]


def test_delete_removes_the_subscription_and_its_deliveries_batch_by_batch(
    api, org, subscription, receiver, monkeypatch
):
    monkeypatch.setattr("outbox.services.DELETE_BATCH", 2)
    receiver.post(HOOK_URL, status=200)
    kept = make_subscription(org)
    for _ in range(5):
        events_record(EventType.MESSAGE_READ, {org.pk: {}})
    run_due()  # with attempts to delete too

    response = api.delete(f"{SUBSCRIPTIONS}/{subscription.external_id}")

    assert response.status_code == 200 and response.json()["data"]["deleted"] is True
    assert list(WebhookSubscription.objects.all()) == [kept]
    assert set(Delivery.objects.values_list("subscription", flat=True)) == {kept.pk}
    assert DeliveryAttempt.objects.filter(delivery__subscription=kept).count() == DeliveryAttempt.objects.count() == 5


def test_another_orgs_subscriptions_and_deliveries_answer_like_missing_ones(api, org, other_org):
    theirs = make_subscription(other_org, url="https://other.example.com/")
    events_record(EventType.MESSAGE_READ, {other_org.pk: {}})
    their_delivery = Delivery.objects.get()
    missing_sub, missing_delivery = "wbs_01HXYZABCDEFGHJKMNPQRSTVWX", "wbd_01HXYZABCDEFGHJKMNPQRSTVWX"

    for foreign, missing in (
        (("get", f"{SUBSCRIPTIONS}/{theirs.external_id}"), ("get", f"{SUBSCRIPTIONS}/{missing_sub}")),
        (("patch", f"{SUBSCRIPTIONS}/{theirs.external_id}"), ("patch", f"{SUBSCRIPTIONS}/{missing_sub}")),
        (("delete", f"{SUBSCRIPTIONS}/{theirs.external_id}"), ("delete", f"{SUBSCRIPTIONS}/{missing_sub}")),
        (("post", f"{SUBSCRIPTIONS}/{theirs.external_id}/rotate_secret"),
         ("post", f"{SUBSCRIPTIONS}/{missing_sub}/rotate_secret")),
        (("get", f"{DELIVERIES}/{their_delivery.external_id}"), ("get", f"{DELIVERIES}/{missing_delivery}")),
        (("post", f"{DELIVERIES}/{their_delivery.external_id}/replay"),
         ("post", f"{DELIVERIES}/{missing_delivery}/replay")),
    ):  # fmt: skip
        a = getattr(api, foreign[0])(foreign[1], {}, format="json")
        b = getattr(api, missing[0])(missing[1], {}, format="json")
        assert a.status_code == b.status_code == 404
        assert {**a.json()["error"], "request_id": None} == {**b.json()["error"], "request_id": None}
    assert api.get(SUBSCRIPTIONS).json()["data"] == []
    assert api.get(DELIVERIES).json()["data"] == []
    assert api.get(DELIVERIES, {"subscription": theirs.external_id}).json()["data"] == []
    assert api.post(f"{DELIVERIES}/replay", {}, format="json").json()["data"]["replayed"] == 0
    theirs.refresh_from_db()
    assert theirs.enabled and Delivery.objects.count() == 1


@pytest.fixture
def history(org, subscription, receiver):
    """Five deliveries: three delivered read events, two received events that failed for good."""
    receiver.post(HOOK_URL, status=200)
    for _ in range(3):
        events_record(EventType.MESSAGE_READ, {org.pk: {}})
    run_due()
    receiver.replace("POST", HOOK_URL, status=400, body='{"error": "no"}')
    for _ in range(2):
        events_record(EventType.MESSAGE_RECEIVED, {org.pk: {"object": "whatsapp_business_account", "entry": []}})
    run_due()
    return subscription


def test_deliveries_list_newest_first_with_each_attempt_and_filters(api, history, django_assert_num_queries):
    api.get(SUBSCRIPTIONS)  # the key's last_used_at is written at most once a minute: not on this page
    # 1 key and org with the rate-limit window (2 on SQLite), 2 deliveries with subscription and event,
    # 3 their attempts.
    with django_assert_num_queries(3 if connection.vendor == "postgresql" else 4):
        page = api.get(DELIVERIES).json()
    assert [d["status"] for d in page["data"]] == ["failed"] * 2 + ["delivered"] * 3
    failed = page["data"][0]
    assert failed["subscription_id"] == history.external_id and failed["event_type"] == "message.received"
    assert failed["attempt_log"][0]["status_code"] == 400
    assert failed["attempt_log"][0]["response_excerpt"] == '{"error": "no"}'
    assert failed["attempt_log"][0]["duration_ms"] >= 0

    assert len(api.get(DELIVERIES, {"status": "delivered"}).json()["data"]) == 3
    assert len(api.get(DELIVERIES, {"event_type": "message.received"}).json()["data"]) == 2
    assert len(api.get(DELIVERIES, {"subscription": history.external_id}).json()["data"]) == 5
    assert_error(api.get(DELIVERIES, {"status": "lost"}), 400, "invalid_field_value", "status")


def test_deliveries_page_with_a_cursor_bound_to_its_filters(api, history):
    first = api.get(DELIVERIES, {"limit": 2}).json()
    second = api.get(DELIVERIES, {"limit": 2, "cursor": first["next_cursor"]}).json()
    third = api.get(DELIVERIES, {"limit": 2, "cursor": second["next_cursor"]}).json()

    ids = [d["id"] for page in (first, second, third) for d in page["data"]]
    assert len(ids) == len(set(ids)) == 5 and third["has_more"] is False
    other_filter = api.get(DELIVERIES, {"limit": 2, "status": "failed", "cursor": first["next_cursor"]})
    assert_error(other_filter, 400, "invalid_field_value", "cursor")


def test_replay_sends_the_event_again_as_a_new_delivery(api, history, receiver):
    receiver.replace("POST", HOOK_URL, status=200)
    failed = Delivery.objects.filter(status=DeliveryStatus.FAILED).first()

    response = api.post(f"{DELIVERIES}/{failed.external_id}/replay")

    assert response.status_code == 201
    replay = Delivery.objects.get(external_id=response.json()["data"]["id"])
    assert replay.event_id == failed.event_id and replay.status == DeliveryStatus.PENDING
    run_due()
    replay.refresh_from_db()
    assert replay.status == DeliveryStatus.DELIVERED
    assert receiver.calls[-1].request.headers["webhook-id"] == replay.external_id


def test_bulk_replay_takes_the_same_filters_and_at_most_1000(api, history, receiver):
    response = api.post(f"{DELIVERIES}/replay", {"status": "failed"}, format="json")

    assert response.status_code == 201
    assert response.json()["data"]["replayed"] == 2
    assert Delivery.objects.filter(status=DeliveryStatus.PENDING).count() == 2
    assert_error(api.post(f"{DELIVERIES}/replay", {"limit": 1001}, format="json"), 400, "invalid_field_value", "limit")


def test_another_key_of_the_same_org_sees_the_same_subscriptions(org, subscription):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKey.issue(org=org)[1]}")
    assert [s["id"] for s in client.get(SUBSCRIPTIONS).json()["data"]] == [subscription.external_id]
