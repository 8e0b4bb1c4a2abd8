"""Every secret rotates without downtime: SECRET_KEY (sessions and signed cursors survive through
SECRET_KEY_FALLBACKS), META_APP_SECRET (the previous one accepted while it is set), a number's Meta token
(replaced from the command line), API keys (from the API, the admin and a command, the old key working
for a grace period only)."""

import io
import json
from datetime import timedelta
from unittest import mock

import pytest
import responses
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import assert_error, logged_in
from fakemeta import payloads
from inbox.models import ApiKey, Message, PhoneNumber, Role
from inbox.tests.test_webhooks import DOCUMENTED_INBOUND, inbound_value, meta_payload
from testing.meta import graph_messages_url, meta_confirms_number


def bearer(secret):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def later(hours):
    """timezone.now() as the key check sees it, `hours` from now."""
    return mock.patch("orgs.auth.timezone.now", return_value=timezone.now() + timedelta(hours=hours))


# --- SECRET_KEY ---------------------------------------------------------------------------------------


def test_sessions_and_cursors_survive_a_secret_key_change_through_the_fallbacks(
    settings, org, phone_number, make_member, make_message, api
):
    for n in range(3):
        make_message(phone_number, contact=f"6281200000{n}")
    manager = make_member(org, Role.MANAGER)
    staff, away = logged_in(manager), logged_in(manager)  # two sessions made with the old key
    cursor = api.get(f"/v1/{phone_number.phone_number_id}/messages?limit=1").json()["next_cursor"]
    old_key = settings.SECRET_KEY

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-secret-key-" + "x" * 40, [old_key]
    assert staff.get("/admin/").status_code == 200  # ... which Django moves to the new key as it is used
    page = api.get(f"/v1/{phone_number.phone_number_id}/messages?limit=1&cursor={cursor}")
    assert page.status_code == 200 and len(page.json()["data"]) == 1

    settings.SECRET_KEY_FALLBACKS = []  # the old key retired: what it alone signed is no longer good
    assert staff.get("/admin/").status_code == 200
    assert away.get("/admin/").status_code == 302  # not used during the overlap: to the login page
    refused = api.get(f"/v1/{phone_number.phone_number_id}/messages?limit=1&cursor={cursor}")
    assert_error(refused, 400, "invalid_field_value", "cursor")


# --- META_APP_SECRET ----------------------------------------------------------------------------------


def deliver_signed_with(secret):
    body = json.dumps(meta_payload(inbound_value(DOCUMENTED_INBOUND["text"][0]))).encode()
    return Client().post(
        "/webhooks/whatsapp",
        body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=payloads.sign(body, secret),
    )


def test_webhooks_signed_with_the_previous_app_secret_are_accepted_during_the_overlap_only(settings, phone_number):
    old = settings.META_APP_SECRET
    settings.META_APP_SECRET, settings.META_APP_SECRET_PREVIOUS = "the-new-app-secret", old
    assert deliver_signed_with(old).status_code == 200  # Meta still signs with the old one
    assert deliver_signed_with("the-new-app-secret").status_code == 200
    assert deliver_signed_with("neither-of-them").status_code == 401
    assert Message.objects.count() == 1  # the same message twice, stored once

    settings.META_APP_SECRET_PREVIOUS = ""  # Meta switched: the overlap ends
    assert deliver_signed_with(old).status_code == 401
    assert deliver_signed_with("the-new-app-secret").status_code == 200


# --- Meta tokens -----------------------------------------------------------------------------------


def test_a_numbers_meta_token_is_replaced_from_the_command_line(org, phone_number, monkeypatch, meta):
    monkeypatch.setenv("META_ACCESS_TOKEN", "EAAG-the-new-token")
    meta_confirms_number(meta, phone_number.phone_number_id, token="EAAG-the-new-token")
    out = io.StringIO()
    call_command(
        "add_phone_number", "--org", org.slug, "--phone-number-id", phone_number.phone_number_id, "--replace-token",
        stdout=out,
    )  # fmt: skip
    assert "Replaced the Meta access token" in out.getvalue() and "EAAG" not in out.getvalue()
    assert PhoneNumber.objects.get().access_token == "EAAG-the-new-token"

    # The next call to Meta carries the new token.
    new_token = [responses.matchers.header_matcher({"Authorization": "Bearer EAAG-the-new-token"})]
    meta.post(graph_messages_url(phone_number), json={"messaging_product": "whatsapp", "contacts": [],
              "messages": [{"id": "wamid.NEW"}]}, match=new_token)  # fmt: skip
    api = bearer(ApiKey.issue(org=org)[1])
    body = {"messaging_product": "whatsapp", "to": "6281200000001", "type": "text", "text": {"body": "Halo"}}
    assert api.post(f"/v1/{phone_number.phone_number_id}/messages", body, format="json").status_code == 200


def test_replacing_the_token_of_another_orgs_number_is_refused_like_a_missing_one(
    org, foreign_number, monkeypatch, meta
):
    monkeypatch.setenv("META_ACCESS_TOKEN", "EAAG-mine")
    meta_confirms_number(meta, foreign_number.phone_number_id, token="EAAG-mine")
    with pytest.raises(Exception, match=f"No phone number {foreign_number.phone_number_id} in this org"):
        call_command(
            "add_phone_number", "--org", org.slug, "--phone-number-id", foreign_number.phone_number_id,
            "--replace-token",
        )  # fmt: skip
    assert PhoneNumber.objects.get(pk=foreign_number.pk).access_token == foreign_number.access_token


# --- API keys ----------------------------------------------------------------------------------------


def test_a_key_rotated_from_the_api_keeps_working_for_its_grace_period_only(org):
    old, old_secret = ApiKey.issue(org=org, name="crm", scopes="messages:read media")
    answer = bearer(old_secret).post("/v1/me/rotate_key", {"grace_period_hours": 2}, format="json")

    assert answer.status_code == 201, answer.content
    data = answer.json()["data"]
    new_secret = data["key"]
    assert new_secret.startswith("kirim_live_") and data["id"] != old.external_id
    assert (data["name"], data["scopes"]) == ("crm", ["messages:read", "media"])
    assert data["replaces"]["id"] == old.external_id
    for secret in (old_secret, new_secret):
        assert bearer(secret).get("/v1/me").status_code == 200
    with later(hours=1):
        assert bearer(old_secret).get("/v1/me").status_code == 200
    with later(hours=3):
        assert_error(bearer(old_secret).get("/v1/me"), 401, "expired_api_key")
        assert bearer(new_secret).get("/v1/me").status_code == 200


def test_rotation_never_extends_a_key_that_expires_sooner(org):
    soon = timezone.now() + timedelta(hours=1)
    old, secret = ApiKey.issue(org=org, expires_at=soon)
    data = bearer(secret).post("/v1/me/rotate_key").json()["data"]
    old.refresh_from_db()
    assert old.expires_at == soon
    assert data["expires_at"] is not None  # the successor keeps the expiry it had


def test_a_grace_period_out_of_range_is_refused(org):
    secret = ApiKey.issue(org=org)[1]
    answer = bearer(secret).post("/v1/me/rotate_key", {"grace_period_hours": -1}, format="json")
    assert_error(answer, 400, "invalid_field_value", "grace_period_hours")
    assert ApiKey.objects.count() == 1


def test_a_key_rotated_in_the_admin_is_shown_once_and_the_old_one_expires_later(org, make_member):
    old, old_secret = ApiKey.issue(org=org, name="crm")
    manager = logged_in(make_member(org, Role.MANAGER))
    page = manager.post(
        "/admin/inbox/apikey/", {"action": "rotate", "_selected_action": [old.pk]}, follow=True
    ).content.decode()
    new = ApiKey.objects.exclude(pk=old.pk).get()
    assert new.name == "crm" and "API key rotated" in page and "rotated-key" in page
    old.refresh_from_db()
    assert old.expires_at is not None and old.revoked_at is None
    with later(hours=23):
        assert bearer(old_secret).get("/v1/me").status_code == 200
    with later(hours=25):
        assert_error(bearer(old_secret).get("/v1/me"), 401, "expired_api_key")


def test_a_key_rotated_by_the_command_prints_its_successor_alone_on_the_last_line(org):
    old, old_secret = ApiKey.issue(org=org)
    out = io.StringIO()
    call_command("rotate_api_key", "--key", old.external_id, "--grace-period-hours", "1", stdout=out)
    new_secret = out.getvalue().strip().splitlines()[-1]
    assert bearer(new_secret).get("/v1/me").status_code == 200
    with later(hours=2):
        assert_error(bearer(old_secret).get("/v1/me"), 401, "expired_api_key")
        assert bearer(new_secret).get("/v1/me").status_code == 200
