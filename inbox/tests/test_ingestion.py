"""Nothing acknowledged is lost: each item of a webhook that can be stored is stored, each that cannot
is recorded on its event with its reason, and a database outage is a 5xx so that Meta delivers again."""

import json

import pytest
from django.db import OperationalError
from django.utils import timezone

from conftest import ON_POSTGRES
from fakemeta import payloads
from inbox.models import Conversation, Direction, Message, Status, WebhookEvent
from inbox.tests.webhook_payloads import BAD_ITEMS, PHONE_NUMBER_ID, good_messages


@pytest.mark.parametrize("kind", BAD_ITEMS)
def test_one_item_that_cannot_be_stored_fails_alone(phone_number, deliver, kind, caplog):
    body, item, reason = BAD_ITEMS[kind]

    assert deliver(None, raw=body.encode()).status_code == 200

    assert sorted(Message.objects.values_list("wamid", flat=True)) == ["wamid.GOOD0", "wamid.GOOD1", "wamid.GOOD2"]
    assert Conversation.objects.count() == 3
    event = WebhookEvent.objects.get()
    assert event.processed_at is not None
    assert [f["item"] for f in event.failed_items] == [item]
    assert reason in event.failed_items[0]["reason"] and reason in event.error
    assert f"{item}: " in caplog.text and reason in caplog.text
    assert list(WebhookEvent.objects.failed()) == [event]


def without_sender(wamid, sender):
    message = payloads.text_message(wamid, "0", "who?")
    del message["from"], message["from_user_id"]  # 2026's messages name their sender twice
    return message if sender is None else {**message, "from": sender}


UNUSABLE_ITEMS = [
    without_sender("wamid.NOFROM", None),
    without_sender("wamid.EMPTY", ""),
    without_sender("wamid.BLANK", "  "),
    without_sender("wamid.INT", 6281234),
    without_sender("wamid.ZERO", 0),
    "a text where a message belongs",
    {"from": "6281299", "type": "text", "text": {"body": "no id"}},
]


@pytest.mark.parametrize("path", ["one statement", "steps"])
def test_items_without_a_usable_sender_or_id_are_recorded_as_failed_on_either_path(
    phone_number, deliver, path, monkeypatch
):
    """Every acknowledged item is stored or recorded with its reason: none dropped in silence, by
    PostgreSQL's one statement (a payload of messages alone) as by the steps."""
    if path == "one statement" and not ON_POSTGRES:
        pytest.skip("PostgreSQL's one statement")
    if path == "steps":
        monkeypatch.setattr("inbox.services.ingest_one_statement.INBOUND_IN_ONE_STATEMENT.run", lambda *args: None)
    unusable_status = {"id": "wamid.SENT"}  # no `status`
    body = payloads.webhook(PHONE_NUMBER_ID, messages=[*good_messages(1), *UNUSABLE_ITEMS], statuses=[unusable_status])

    assert deliver(body).status_code == 200

    assert list(Message.objects.values_list("wamid", flat=True)) == ["wamid.GOOD0"]
    failed = WebhookEvent.objects.get().failed_items
    assert [f["item"] for f in failed] == [
        "message wamid.NOFROM", "message wamid.EMPTY", "message wamid.BLANK", "message wamid.INT",
        "message wamid.ZERO", "message", "message", "status",
    ]  # fmt: skip
    assert "no sender" in failed[0]["reason"] and "`id`" in failed[6]["reason"] and "`status`" in failed[7]["reason"]


@pytest.mark.parametrize("kind", ["number-out-of-range", "lone-surrogate"])
def test_an_item_the_database_refuses_unforeseen_fails_alone(phone_number, deliver, kind, monkeypatch):
    """When no check foresaw it, the database's own refusal (PostgreSQL's JSON, SQLite's encoder)
    sends the payload through one savepoint per item."""
    monkeypatch.setattr("meta.payloads.unstorable_reason", lambda item, suspect: None)
    body, item, _ = BAD_ITEMS[kind]

    assert deliver(None, raw=body.encode()).status_code == 200

    assert Message.objects.count() == 3 and Conversation.objects.count() == 3
    assert [f["item"] for f in WebhookEvent.objects.get().failed_items] == [item]


def test_a_message_reusing_another_orgs_wamid_makes_no_conversation(phone_number, foreign_number, deliver):
    theirs = payloads.webhook(
        foreign_number.phone_number_id, messages=[payloads.text_message("wamid.SHARED", "6281299", "theirs")]
    )
    ours = payloads.webhook(PHONE_NUMBER_ID, messages=[payloads.text_message("wamid.SHARED", "6281277", "ours")])
    deliver(theirs)

    assert deliver(ours).status_code == 200

    assert Message.objects.get().phone_number == foreign_number
    assert list(Conversation.objects.values_list("phone_number", "contact_wa_id")) == [(foreign_number.pk, "6281299")]
    assert not Conversation.objects.filter(org=phone_number.org).exists()


def test_a_database_outage_answers_5xx_so_meta_delivers_again(phone_number, deliver, break_inbound_storing):
    body = payloads.webhook(PHONE_NUMBER_ID, messages=good_messages())
    with break_inbound_storing(OperationalError("connection refused")):
        assert deliver(body).status_code == 500
    assert not Message.objects.exists()

    assert deliver(body).status_code == 200  # Meta's retry
    assert Message.objects.count() == 3


def test_a_database_outage_while_keeping_the_body_answers_5xx_and_applies_nothing(phone_number, deliver, monkeypatch):
    def database_down(**values):
        raise OperationalError("the database system is shutting down")

    with monkeypatch.context() as patch:
        patch.setattr("inbox.services.ingest.KEEP_EVENT.execute", database_down)
        # A status too: the payload takes the steps (PostgreSQL's one statement keeps the event itself).
        with_a_status = payloads.webhook(
            PHONE_NUMBER_ID, messages=good_messages(), statuses=[payloads.status("wamid.X", "read", "628120")]
        )
        assert deliver(with_a_status).status_code == 500
    # The body and what it brought commit together, or not at all: Meta's retry brings both.
    assert not Message.objects.exists() and not Conversation.objects.exists()


def test_a_status_for_a_message_of_ours_is_applied_beside_a_failing_item(phone_number, make_message, deliver):
    sent = make_message(phone_number, direction=Direction.OUTBOUND, status=Status.SENT)
    body, _, _ = BAD_ITEMS["lone-surrogate"]
    payload = json.loads(body)
    payload["entry"][0]["changes"][0]["value"]["statuses"] = [payloads.status(sent.wamid, "read", "628120")]

    deliver(None, raw=json.dumps(payload).encode())

    sent.refresh_from_db()
    assert sent.status == Status.READ
    assert Message.objects.filter(direction=Direction.INBOUND).count() == 3


def test_one_inbound_message_costs_one_statement_on_postgresql(phone_number, deliver, django_assert_num_queries):
    if ON_POSTGRES:  # one statement in autocommit (in a savepoint here, inside the test's transaction)
        expected = ["SAVEPOINT", "WITH", "RELEASE"]
    else:  # BEGIN, the number with whether its org has webhook subscriptions, the conversation that
        # knows the sender's user id, the message, its conversation, the event, COMMIT
        expected = ["SAVEPOINT", "SELECT", "SELECT", "INSERT", "INSERT", "INSERT", "RELEASE"]

    with django_assert_num_queries(len(expected)) as queries:
        assert deliver(payloads.webhook(PHONE_NUMBER_ID, messages=good_messages(1))).status_code == 200

    # (an executemany is logged as "N times: SQL")
    assert [next(w for w in query["sql"].split() if w.isalpha()) for query in queries.captured_queries] == expected
    assert Message.objects.count() == 1 and Conversation.objects.count() == 1
    assert WebhookEvent.objects.get().processed_at is not None


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's one statement")
def test_the_one_statement_keeps_psycopgs_cached_conversion_and_the_rows_of_the_steps(phone_number, deliver):
    """Past MAX_CACHED_STATEMENT_LENGTH psycopg converts the statement anew for every webhook (a new
    column once took it to 4178 characters unnoticed). The rows travel as JSON: a value left out is
    NULL, never JSON's null in a JSON column, and times keep their microseconds."""
    from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH

    from inbox.services.ingest_one_statement import INBOUND_IN_ONE_STATEMENT

    assert len(INBOUND_IN_ONE_STATEMENT._sql) <= MAX_CACHED_STATEMENT_LENGTH

    (message,) = good_messages(1)
    message["timestamp"] = "1764213000"
    deliver(payloads.webhook(PHONE_NUMBER_ID, messages=[message]))
    stored = Message.objects.get()
    assert (stored.error, stored.read_at, stored.claim_token, stored.read_by_key_id) == (None, None, None, None)
    assert Message.objects.filter(error__isnull=True).count() == 1  # SQL NULL, not the JSON value null
    assert stored.payload == message
    assert stored.timestamp.timestamp() == 1764213000
    assert stored.created_at <= stored.updated_at <= timezone.now()
    # to the microsecond: cut to milliseconds (as Django's JSON encoder does) both would end in 000
    assert (stored.created_at.microsecond % 1000, stored.updated_at.microsecond % 1000) != (0, 0)
    assert stored.external_id.startswith("msg_") and stored.direction == Direction.INBOUND


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's one statement")
def test_the_one_statement_stores_the_row_the_steps_store(phone_number, deliver, monkeypatch):
    """The one statement builds its rows from the fields' defaults without a Message: a field added
    with a default, an auto_now or a conversion of its own must come out the same as through the ORM."""
    from inbox.services.ingest_one_statement import INBOUND_IN_ONE_STATEMENT

    def message(wamid):
        return payloads.text_message(wamid, "6281200000", "same", timestamp=1764213000)

    contact, run, done = payloads.contact("6281200000", "Ana"), INBOUND_IN_ONE_STATEMENT.run, []
    monkeypatch.setattr(INBOUND_IN_ONE_STATEMENT, "run", lambda *args: done.append(run(*args)) or done[-1])
    deliver(payloads.webhook(PHONE_NUMBER_ID, messages=[message("wamid.ONE")], contacts=[contact]))
    assert done and done[0] is not None  # the statement ran and was not refused
    monkeypatch.setattr(INBOUND_IN_ONE_STATEMENT, "run", lambda *args: None)  # as for a subscribed org: the steps
    deliver(payloads.webhook(PHONE_NUMBER_ID, messages=[message("wamid.STEPS")], contacts=[contact]))

    volatile = {"id", "external_id", "wamid", "created_at", "updated_at", "payload"}
    one, steps = (
        {f.name: getattr(m, f.name) for f in Message._meta.concrete_fields if f.name not in volatile}
        for m in (Message.objects.get(wamid="wamid.ONE"), Message.objects.get(wamid="wamid.STEPS"))
    )
    assert one == steps
    assert Message.objects.get(wamid="wamid.ONE").payload == message("wamid.ONE")


def test_the_numbers_statement_finds_what_the_orm_finds(phone_number, second_number, foreign_number, other_org):
    """The fast path `_numbers` (docs/development/performance.md) against its plain path, the ORM."""
    from django.db.models import Exists, OuterRef

    from inbox.models import PhoneNumber
    from inbox.services.inbound_rows import _Number, _numbers
    from outbox.models import WebhookSubscription

    WebhookSubscription.objects.create(org=phone_number.org, url="https://example.com/a", events=["message.received"])
    WebhookSubscription.objects.create(
        org=other_org, url="https://example.com/b", events=["message.received"], enabled=False
    )
    PhoneNumber.objects.filter(pk=second_number.pk).update(auto_assign=True)
    ids = [phone_number.phone_number_id, second_number.phone_number_id, foreign_number.phone_number_id, "999999999"]
    subscribed = Exists(WebhookSubscription.objects.filter(org_id=OuterRef("org_id"), enabled=True))
    by_orm = {
        row[0]: _Number(*row[1:])
        for row in PhoneNumber.objects.filter(phone_number_id__in=ids)
        .annotate(subscribed=subscribed)
        .values_list("phone_number_id", "pk", "org_id", "subscribed", "auto_assign")
    }
    assert _numbers(ids) == by_orm
    assert [number.subscribed for number in by_orm.values()].count(True) == 2  # both of the subscribed org's
    assert [number.auto_assign for number in by_orm.values()].count(True) == 1
