"""A contact's erasure and message content retention: the content goes (text, Meta's objects with their
media ids, names, raw webhook bodies, events out), the counts and ids stay; on PostgreSQL a dump of the
database holds none of the contact's text afterwards."""

import subprocess
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from conftest import assert_error, postgres_only
from dev.dburl import database_url
from fakemeta import payloads
from inbox.models import AuditAction, AuditEntry, Conversation, Direction, IdempotencyRecord, Message, WebhookEvent
from inbox.services.erasure import message_content_expire
from outbox.models import Delivery, Event, WebhookSubscription
from testing.webhooks import WEBHOOK_URL, signed_by_meta

SITI, BUDI = "6281200000001", "6281200000002"
SECRET_TEXT = "my address is Jalan Rahasia 7"


def contact_writes(phone_number, wa_id, text, wamid):
    body = payloads.encode(payloads.webhook(
        phone_number.phone_number_id, contacts=[payloads.contact(wa_id, f"Name of {wa_id}")],
        messages=[payloads.text_message(wamid, wa_id, text)],
    ))  # fmt: skip
    response = Client().post(WEBHOOK_URL, body, content_type="application/json",
                             HTTP_X_HUB_SIGNATURE_256=signed_by_meta(body)["X-Hub-Signature-256"])  # fmt: skip
    assert response.status_code == 200


@pytest.fixture
def history(org, phone_number, make_message, connections_kept_open):
    WebhookSubscription.objects.create(org=org, url="https://hooks.example.com/k", events=["message.received"])
    contact_writes(phone_number, SITI, SECRET_TEXT, "wamid.SITI1")
    contact_writes(phone_number, BUDI, "Budi keeps this", "wamid.BUDI1")
    image = {"type": "image", "image": {"id": "1003383421387256", "caption": "my ID card"}}
    make_message(phone_number, contact=SITI, type="image", text="my ID card", payload=image)
    make_message(phone_number, contact=SITI, direction=Direction.OUTBOUND, text="We deliver to Jalan Rahasia")
    IdempotencyRecord.objects.create(
        org=org, key="k1", request_digest="d", state="done", response_status=200, expires_at=timezone.now(),
        response_body={"data": {"contact": SITI, "text": "We deliver to Jalan Rahasia", "content": {"x": 1}}},
    )  # fmt: skip


def erase(api, phone_number, contact=SITI):
    return api.delete(f"/v1/{phone_number.phone_number_id}/contacts/{contact}")


def test_erasing_a_contact_empties_their_content_and_keeps_counts_and_ids(api, phone_number, history):
    siti_ids = set(Message.objects.filter(contact_wa_id=SITI).values_list("external_id", "status"))
    assert Event.objects.count() == 2 and Delivery.objects.filter(status="pending").count() == 2

    answer = erase(api, phone_number)

    assert answer.status_code == 200, answer.content
    assert answer.json()["data"] == {
        "object": "contact_erasure", "phone_number_id": phone_number.phone_number_id, "contact": SITI,
        "messages_erased": 3, "webhook_payloads_deleted": 1, "events_deleted": 1,
    }  # fmt: skip
    siti = Message.objects.filter(contact_wa_id=SITI)
    assert set(siti.values_list("external_id", "status")) == siti_ids  # the rows, ids and statuses stay
    assert set(siti.values_list("text", "contact_name")) == {("", "")}
    assert all(m.payload == {} and m.content_erased_at for m in siti)
    assert Conversation.objects.get(contact_wa_id=SITI).last_message_text == ""
    assert not WebhookEvent.objects.filter(body__contains=SITI).exists()
    assert not Event.objects.filter(body__contains=SITI).exists()  # its pending delivery went with it
    assert IdempotencyRecord.objects.get().response_body["data"] == {"contact": SITI, "text": "", "content": {},
                                                                     "error": None, "contact_name": ""}  # fmt: skip
    budi = Message.objects.get(contact_wa_id=BUDI)  # another contact keeps everything
    assert budi.text == "Budi keeps this" and Event.objects.filter(body__contains=BUDI).exists()
    assert AuditEntry.objects.get(action=AuditAction.CONTACT_ERASED).target == SITI

    again = erase(api, phone_number)  # nothing left to erase
    assert again.json()["data"]["messages_erased"] == 0


def test_another_orgs_number_answers_like_a_missing_one(api, foreign_number, make_message):
    make_message(foreign_number, contact=SITI, text=SECRET_TEXT)
    for number in (foreign_number.phone_number_id, "106540352249999"):
        assert_error(api.delete(f"/v1/{number}/contacts/{SITI}"), 404, "resource_not_found", "phone_number_id")
    assert Message.objects.get().text == SECRET_TEXT


def test_the_command_erases_as_the_api_does(org, phone_number, history, capsys):
    call_command("erase_contact", "--org", org.slug, "--phone-number-id", phone_number.phone_number_id,
                 "--contact", SITI)  # fmt: skip
    assert "the content of 3 message(s), 1 webhook payload(s) and 1 event(s) out" in capsys.readouterr().out
    assert not Message.objects.filter(contact_wa_id=SITI).exclude(text="").exists()


def test_retention_empties_content_older_than_the_period_and_nothing_newer(
    settings, org, other_org, phone_number, foreign_number, make_message
):
    now = timezone.now()
    old = make_message(phone_number, text="old", timestamp=now - timedelta(days=31))
    new = make_message(phone_number, text="new", timestamp=now - timedelta(days=29))
    theirs = make_message(foreign_number, text="theirs", timestamp=now - timedelta(days=10))
    settings.MESSAGE_CONTENT_RETENTION_DAYS = None
    assert message_content_expire(now) == 0  # no period: content is kept

    settings.MESSAGE_CONTENT_RETENTION_DAYS = 30
    other_org.message_content_retention_days = 7  # an org's own period wins
    other_org.save()
    assert message_content_expire(now) == 2
    texts = dict(Message.objects.values_list("pk", "text"))
    assert (texts[old.pk], texts[new.pk], texts[theirs.pk]) == ("", "new", "")
    assert message_content_expire(now) == 0  # running again changes nothing


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_after_the_erasure_the_dump_holds_none_of_the_contacts_text(api, phone_number, history):
    def dump():
        return subprocess.run(["pg_dump", "--data-only", database_url(settings.DATABASES["default"])],
                              capture_output=True, text=True, check=True, timeout=120).stdout  # fmt: skip

    assert "Jalan Rahasia" in dump()  # it was there
    assert erase(api, phone_number).status_code == 200
    after = dump()
    assert "Jalan Rahasia" not in after and "my ID card" not in after and "1003383421387256" not in after
    assert "Budi keeps this" in after
