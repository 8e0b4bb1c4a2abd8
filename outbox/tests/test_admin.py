"""Events out in the admin: managers subscribe through the same service as the API (the URL guard
included) and see the secret once; agents see none of it; replay from the delivery list."""

from django.urls import reverse

from conftest import logged_in
from inbox.models import Role
from outbox.models import Delivery, DeliveryStatus, EventType, WebhookSubscription
from outbox.record import events_record
from outbox.tests.conftest import HOOK_URL

ADD = reverse("admin:outbox_webhooksubscription_add")


def form(org, **fields):
    return {"org": org.pk, "url": HOOK_URL, "receiver": "kirim", "events": ["message.read"], "description": "",
            "enabled": "on", **fields}  # fmt: skip


def test_a_manager_subscribes_and_sees_the_secret_once(org, make_member):
    manager = logged_in(make_member(org, Role.MANAGER))

    response = manager.post(ADD, form(org))

    subscription = WebhookSubscription.objects.get()
    assert response.status_code == 200 and subscription.secret in response.content.decode()
    change_page = manager.get(reverse("admin:outbox_webhooksubscription_change", args=[subscription.pk]))
    assert change_page.status_code == 200 and subscription.secret not in change_page.content.decode()


def test_enabling_in_the_admin_clears_why_kirim_disabled_it(org, subscription, make_member):
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        enabled=False, disabled_reason="24 failures in a row", failure_streaks={"message.read": 24}
    )
    manager = logged_in(make_member(org, Role.MANAGER))

    change = reverse("admin:outbox_webhooksubscription_change", args=[subscription.pk])
    response = manager.post(change, form(org, url=subscription.url, events=subscription.events))

    assert response.status_code == 302
    subscription.refresh_from_db()
    assert (subscription.enabled, subscription.disabled_reason, subscription.failure_streaks) == (True, "", {})


def test_the_admin_refuses_what_the_api_refuses(org, make_member):
    manager = logged_in(make_member(org, Role.MANAGER))

    response = manager.post(ADD, form(org, url="https://10.1.2.3/hook"))

    assert "private" in str(response.context["adminform"].form.errors["url"])
    assert not WebhookSubscription.objects.exists()
    refused = manager.post(ADD, form(org, receiver="meta"))
    assert '"receiver": "kirim"' in refused.context["adminform"].form.errors["events"][0]
    manager.post(ADD, form(org, receiver="meta", events=[]))
    assert WebhookSubscription.objects.get().events == ["message.received", "message.status"]


def test_rotating_in_the_admin_shows_the_new_secret(org, subscription, make_member):
    manager = logged_in(make_member(org, Role.MANAGER))
    old = subscription.secret

    response = manager.post(reverse("admin:outbox_webhooksubscription_changelist"),
                            {"action": "rotate_secret", "_selected_action": [subscription.pk]})  # fmt: skip

    subscription.refresh_from_db()
    assert subscription.secret != old and subscription.secret in response.content.decode()
    assert subscription.signing_secrets() == [subscription.secret, old]


def test_agents_see_no_subscriptions_or_deliveries(org, subscription, make_member):
    agent = logged_in(make_member(org, Role.AGENT))

    for name in ("webhooksubscription", "delivery"):
        assert agent.get(reverse(f"admin:outbox_{name}_changelist")).status_code == 403


def test_a_manager_replays_a_delivery(org, subscription, make_member):
    events_record(EventType.MESSAGE_READ, {org.pk: {}})
    Delivery.objects.update(status=DeliveryStatus.DEAD)
    manager = logged_in(make_member(org, Role.MANAGER))

    manager.post(reverse("admin:outbox_delivery_changelist"),
                 {"action": "replay", "_selected_action": list(Delivery.objects.values_list("pk", flat=True))})  # fmt: skip

    assert Delivery.objects.filter(status=DeliveryStatus.PENDING).count() == 1


def test_a_manager_deletes_a_subscription_with_its_deliveries(org, subscription, make_member):
    """The deliveries go with their subscription (counted on the confirmation page, not listed), with
    no permission on deliveries, which managers only view."""
    events_record(EventType.MESSAGE_READ, {org.pk: {}})
    manager = logged_in(make_member(org, Role.MANAGER))
    url = reverse("admin:outbox_webhooksubscription_delete", args=[subscription.pk])

    confirmation = manager.get(url)
    deleted = manager.post(url, {"post": "yes"})

    assert confirmation.status_code == 200 and "Deliveries: 1" in confirmation.content.decode()
    assert deleted.status_code == 302
    assert not WebhookSubscription.objects.exists() and not Delivery.objects.exists()
