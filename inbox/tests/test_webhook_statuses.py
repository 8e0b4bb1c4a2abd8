"""Meta's statuses of sends: every documented status moves its message, in any order and batching, never
backwards, never onto another number's or an inbound row; failures keep Meta's errors."""

import itertools

import pytest

from inbox.models import Direction, Message, Status
from inbox.tests.webhook_payloads import CUSTOMER, documented_status, meta_payload, statuses_value


@pytest.fixture
def sent_message(phone_number, make_message):
    return make_message(phone_number, contact=CUSTOMER, direction=Direction.OUTBOUND, status=Status.ACCEPTED)


@pytest.mark.parametrize("value", ["sent", "delivered", "read"])
def test_documented_statuses_move_outbound_messages(sent_message, deliver, value):
    assert deliver(meta_payload(statuses_value(documented_status(sent_message.wamid, value)))).status_code == 200

    sent_message.refresh_from_db()
    assert sent_message.status == value


def test_failed_status_keeps_metas_errors(sent_message, deliver):
    errors = [{"code": 131049, "title": "This message was not delivered to maintain healthy ecosystem engagement.",
               "message": "This message was not delivered to maintain healthy ecosystem engagement.",
               "error_data": {"details": "In order to maintain a healthy ecosystem engagement, the message failed."},
               "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]  # fmt: skip

    deliver(meta_payload(statuses_value(documented_status(sent_message.wamid, "failed", errors=errors))))

    sent_message.refresh_from_db()
    assert sent_message.status == Status.FAILED
    assert sent_message.error == {"errors": errors}


ORDERS = list(itertools.permutations(["sent", "delivered", "read"]))


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
@pytest.mark.parametrize("batched", [True, False], ids=["one-payload", "one-payload-each"])
def test_statuses_in_any_order_end_at_the_highest_rank(sent_message, deliver, order, batched):
    statuses = [documented_status(sent_message.wamid, value) for value in order]
    for group in [statuses] if batched else [[s] for s in statuses]:
        deliver(meta_payload(statuses_value(*group)))

    sent_message.refresh_from_db()
    assert sent_message.status == Status.READ


def test_delivered_after_read_changes_nothing_and_failed_after_delivered_neither(sent_message, deliver):
    deliver(meta_payload(statuses_value(documented_status(sent_message.wamid, "read"))))
    deliver(meta_payload(statuses_value(documented_status(sent_message.wamid, "delivered"))))
    deliver(meta_payload(statuses_value(documented_status(sent_message.wamid, "failed", errors=[{"code": 1}]))))

    sent_message.refresh_from_db()
    assert sent_message.status == Status.READ
    assert sent_message.error is None


def test_statuses_never_touch_inbound_rows_or_other_numbers(phone_number, foreign_number, make_message, deliver):
    inbound = make_message(phone_number, contact=CUSTOMER)
    foreign = make_message(foreign_number, direction=Direction.OUTBOUND, status=Status.SENT)

    deliver(
        meta_payload(statuses_value(documented_status(inbound.wamid, "read"), documented_status(foreign.wamid, "read")))
    )

    assert Message.objects.get(pk=inbound.pk).status == Status.RECEIVED
    assert Message.objects.get(pk=foreign.pk).status == Status.SENT


def test_100_failed_statuses_cost_one_update_and_each_keeps_its_errors(
    phone_number, make_message, deliver, django_assert_num_queries
):
    outbound = [make_message(phone_number, direction=Direction.OUTBOUND, status=Status.SENT) for _ in range(100)]
    value = statuses_value(
        *(documented_status(m.wamid, "failed", errors=[{"code": 131026, "title": f"undeliverable {n}"}])
          for n, m in enumerate(outbound))
    )  # fmt: skip

    # 1 SAVEPOINT, 2 numbers with whether their orgs have webhook subscriptions (none), 3 one UPDATE
    # for every failure, 4-7 their prices (lock, pricing, the two tallies), 8 which wamids are known,
    # 9 keep the event, 10 RELEASE.
    with django_assert_num_queries(10):
        assert deliver(meta_payload(value)).status_code == 200

    for n, message in enumerate(outbound):
        message.refresh_from_db()
        assert message.status == Status.FAILED
        assert message.error == {"errors": [{"code": 131026, "title": f"undeliverable {n}"}]}
