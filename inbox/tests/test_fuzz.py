"""Property-based fuzzing of the two doors where Meta's and clients' bodies come in: signed webhooks
mixing good items with items Kirim cannot store, and the messages endpoint. Whatever comes in: no
5xx, every good item of a webhook is stored and every other recorded as failed, and no conversation is
left without a message.

CI runs each test with a fixed seed (derandomize): one round of at most FUZZ_EXAMPLES examples (default
150) inside a time budget of FUZZ_SECONDS (default 20). With fresh randomness (FUZZ_RANDOM=1) rounds
follow one another until the budget is spent, e.g. ten minutes a test:

    FUZZ_SECONDS=600 FUZZ_RANDOM=1 make test PYTEST_ARGS="inbox/tests/test_fuzz.py -s"
"""

import itertools
import json
import os
import time

import pytest
from django.db.models import Exists, OuterRef
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakemeta import payloads
from fakemeta.server import new_wamid
from inbox.models import Conversation, Message, WebhookEvent
from testing.meta import graph_messages_url

BUDGET_SECONDS = float(os.environ.get("FUZZ_SECONDS", "20"))
RANDOM = bool(os.environ.get("FUZZ_RANDOM"))
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
INFINITY = "__INFINITY__"  # replaced by the raw token 1e999 (Python's infinity once parsed)


class Budget:
    """Hypothesis has no clock of its own: examples after the budget pass at once, and `run` repeats
    rounds (fresh randomness only; a fixed seed would repeat itself) while time is left."""

    def __init__(self):
        self.ends = time.monotonic() + BUDGET_SECONDS
        self.ran = 0

    def spent(self):
        if time.monotonic() > self.ends:
            return True
        self.ran += 1
        return False

    def run(self, test):
        test()
        while RANDOM and time.monotonic() < self.ends:
            test()


def no_conversation_without_a_message():
    empty = Conversation.objects.exclude(
        Exists(
            Message.objects.filter(phone_number_id=OuterRef("phone_number_id"), contact_wa_id=OuterRef("contact_wa_id"))
        )
    )
    assert not empty.exists(), list(empty.values("phone_number_id", "contact_wa_id"))


def every_item_stored_or_failed(items):
    """The webhook's messages are each stored or on its event's failed items: none dropped in silence."""
    failed = [f["item"] for f in WebhookEvent.objects.latest("pk").failed_items]
    with_id = [str(m["id"]).replace("\x00", "\ufffd") for m in items if isinstance(m, dict) and m.get("id")]
    stored = set(Message.objects.filter(wamid__in=with_id).values_list("wamid", flat=True))
    assert [wamid for wamid in with_id if wamid not in stored and f"message {wamid}" not in failed] == []
    assert failed.count("message") == len(items) - len(with_id)


serial = itertools.count()
any_text = st.text(max_size=60)  # any code point, surrogates, NUL and controls included
clean_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
digits = st.from_regex(r"\A[1-9][0-9]{7,14}\Z")
user_ids = st.from_regex(r"\A[A-Z]{2}\.[0-9]{10,20}\Z")
finite = st.floats(allow_nan=False, allow_infinity=False)


def json_values(text, numbers):
    leaves = st.none() | st.booleans() | st.integers() | numbers | text
    return st.recursive(
        leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=12
    )


# Webhooks: anything JSON can carry once parsed, infinity and lone surrogates included.
any_json = json_values(any_text, st.floats(allow_nan=False))
# The API's bodies: non-finite numbers and lone surrogates are the input hardening's to refuse (400).
api_json = json_values(clean_text, finite)


@st.composite
def good_message(draw):
    """A message Kirim must store: a fresh wamid, a sender by number and/or user id, maybe a group."""
    wamid = f"wamid.FUZZ{next(serial)}.{draw(st.text('ABCxyz=+/_-', max_size=20))}"
    sender = draw(st.sampled_from(["number", "user_id", "both"]))
    message = {"id": wamid, "timestamp": str(draw(st.integers(0, 2_000_000_000))), "type": "text"}
    if sender != "user_id":
        message["from"] = draw(digits)
    if sender != "number":
        message["from_user_id"] = draw(user_ids)
    if draw(st.booleans()):
        message["group_id"] = draw(st.from_regex(r"\A[A-Za-z0-9]{20,60}\Z"))
    kind = draw(st.sampled_from(["text", "image", "location", "reaction", "hologram", "system"]))
    message["type"] = kind
    message[kind] = draw(st.dictionaries(clean_text, clean_text | st.integers() | finite, max_size=3))
    if kind == "text":
        message["text"]["body"] = draw(clean_text)
    return message


@st.composite
def bad_item(draw):
    """An item Kirim cannot store or cannot use: it may fail alone, never the payload."""
    kind = draw(st.sampled_from(["infinity", "surrogate", "long_id", "long_user_id", "garbage", "no_sender"]))
    wamid = f"wamid.BAD{next(serial)}"
    if kind == "infinity":
        return {"from": "628100", "id": wamid, "type": "location", "location": {"latitude": INFINITY}}
    if kind == "surrogate":
        return {"from": "628100", "id": wamid, "type": "text", "text": {"body": draw(any_text) + "\ud800"}}
    if kind == "long_id":
        return {"from": "628100", "id": wamid + "x" * 300, "type": "text", "text": {"body": "long"}}
    if kind == "long_user_id":
        return {"from_user_id": "US." + "9" * 100, "id": wamid, "type": "text", "text": {"body": "long"}}
    if kind == "no_sender":
        return {"id": wamid, "type": "text", "text": {"body": "who?"}}
    return draw(any_json)


def statuses(wamids):
    values = st.sampled_from(["sent", "delivered", "read", "played", "failed", "deleted", ""]) | any_text
    status = st.fixed_dictionaries(
        {"id": st.sampled_from(wamids) | any_text, "status": values, "timestamp": st.integers() | any_text},
        optional={"errors": any_json, "recipient_user_id": user_ids},
    )
    return st.lists(status | st.floats() | any_json, max_size=4)


@pytest.fixture
def numbers(phone_number, foreign_number, make_message):
    sent = [make_message(phone_number, direction="outbound", status="sent") for _ in range(3)]
    return phone_number, foreign_number, [m.wamid for m in sent]


@pytest.mark.django_db
def test_webhooks_store_every_good_item_and_never_5xx(numbers, deliver):
    phone_number, foreign_number, outbound = numbers
    budget = Budget()
    replayable = []

    @FUZZ
    @given(
        good=st.lists(good_message(), max_size=5),
        bad=st.lists(bad_item(), max_size=3),
        status_items=statuses(outbound),
        replay=st.booleans(),
        replayed=good_message(),
        positions=st.randoms(use_true_random=False),
        foreign=st.booleans(),
    )
    def one_payload(good, bad, status_items, replay, replayed, positions, foreign):
        if budget.spent():
            return
        number = foreign_number if foreign else phone_number
        items = [*good, *bad]
        positions.shuffle(items)
        if replay and replayable:  # a wamid stored before, maybe on the other org's number
            # Drawn from a range that does not grow with `replayable`: Hypothesis refuses a draw whose
            # bounds change between examples that share a prefix (FlakyStrategyDefinition).
            items.append({**replayed, "id": replayable[positions.randrange(2**32) % len(replayable)]})
        payload = payloads.webhook(number.phone_number_id, messages=items)
        payload["entry"][0]["changes"][0]["value"]["statuses"] = status_items
        body = json.dumps(payload).replace(f'"{INFINITY}"', "1e999")

        response = deliver(None, raw=body.encode())

        assert response.status_code == 200, response.content
        stored = dict(Message.objects.filter(wamid__in=[m["id"] for m in good]).values_list("wamid", "phone_number"))
        assert stored == {m["id"]: number.pk for m in good}
        replayable.extend(stored)
        every_item_stored_or_failed(items)
        no_conversation_without_a_message()

    budget.run(one_payload)
    print(f"webhook fuzz: {budget.ran} payloads in the budget")


SEND_TYPES = ["text", "image", "audio", "video", "document", "sticker", "template", "interactive", "location"]


@st.composite
def messages_body(draw, wamids):
    """Bodies for POST /v1/{id}/messages: sends, read receipts, and whatever else a client may post."""
    shape = draw(st.sampled_from(["send", "receipt", "anything"]))
    if shape == "anything":
        return draw(api_json)
    if shape == "receipt":
        body = {"messaging_product": "whatsapp", "status": draw(st.sampled_from(["read", "READ"]) | clean_text)}
        body["message_id"] = draw(st.sampled_from(wamids) | api_json)
        if draw(st.booleans()):
            body["typing_indicator"] = draw(api_json)
        return body
    kind = draw(st.sampled_from(SEND_TYPES) | clean_text)
    body = {"messaging_product": "whatsapp", "to": draw(digits | user_ids | api_json), "type": kind}
    body[kind] = draw(st.fixed_dictionaries({}, optional={"body": clean_text, "link": clean_text, "id": clean_text}))
    if draw(st.booleans()):
        body[draw(clean_text)] = draw(api_json)
    return body


def meta_answer(request):
    body = json.loads(request.body)
    if body.get("status") == "read":
        return 200, {}, '{"success": true}'
    return 200, {}, json.dumps({"messaging_product": "whatsapp", "messages": [{"id": new_wamid()}]})


@pytest.mark.django_db
def test_messages_endpoint_never_5xx_and_leaves_no_empty_conversation(api, phone_number, make_message, meta):
    meta.add_callback("POST", graph_messages_url(phone_number), callback=meta_answer)
    wamids = [make_message(phone_number).wamid for _ in range(3)]
    budget = Budget()

    @FUZZ
    @given(body=messages_body(wamids))
    def one_request(body):
        if budget.spent():
            return
        response = api.post(f"/v1/{phone_number.phone_number_id}/messages", body, format="json")
        assert response.status_code < 500, response.content
        assert response["Content-Type"] == "application/json"
        no_conversation_without_a_message()

    budget.run(one_request)
    print(f"messages fuzz: {budget.ran} requests in the budget")
