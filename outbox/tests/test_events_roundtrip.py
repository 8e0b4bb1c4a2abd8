"""Property: Meta's payloads, whatever text, numbers and fields they carry, signed and posted to the
webhook endpoint, then delivered by the delivery engine, reach each org's subscriber as exactly what
Meta would have sent it (the items of its own numbers, every field as Meta had it), in bytes whose
X-Hub-Signature-256 verifies as they are and over a Meta-style re-encoding of the parsed body.
Examples, budget and seed as in inbox/tests/test_fuzz.py (FUZZ_EXAMPLES, FUZZ_SECONDS, FUZZ_RANDOM)."""

import hashlib
import hmac
import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.ids import new_public_id
from fakemeta import payloads
from inbox.tests.test_fuzz import FUZZ, Budget, json_values
from outbox.tests.conftest import (
    CONTACT_NAME,
    HOOK_URL,
    MESSAGE_TEXT,
    make_subscription,
    run_due,
    whatsapp_api_js_verifies,
)

THEIR_HOOK_URL = "https://other.example.com/hook"
UNKNOWN_NUMBER = "109999999999999"  # no org has it: its items reach nobody

# What encoders get wrong: accents, astral and joined emoji, flags, right-to-left text and marks,
# slashes (Meta writes `\/`), backslashes, quotes, controls, NUL, DEL, the line separators JSON allows.
FRAGMENTS = [MESSAGE_TEXT, CONTACT_NAME, "é", "ß", "👍🏾", "🇮🇩", "👨‍👩‍👧", "مرحبا بالعالم", "שלום", "\u200f", "/", "\\/",
             "\\", '"', "https://example.com/a/b?c=d&e=f", "\n\t", "\u2028", "\x00", "\x7f", "</script>"]  # fmt: skip
text = st.lists(
    st.sampled_from(FRAGMENTS) | st.text(st.characters(exclude_categories=("Cs",)), max_size=8), max_size=4
).map("".join)


class Literal:
    """A number as JSON text writes it: each parses to the same value whoever writes it back."""

    def __init__(self, text):
        self.text = text


# Beyond 64 bits, more digits than a double holds, trailing zeros, exponents, the extremes of a double.
NUMBER_LITERALS = ["12345678901234567890", "-98765432109876543210987654321", "1.10", "1E+2", "2.5e-3", "-0.0",
                   "0.1", "1.7976931348623157e308", "5e-324", "3.141592653589793238462643383279"]  # fmt: skip
numbers = (
    st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(NUMBER_LITERALS).map(Literal)
)
unknown = st.dictionaries(text.map(lambda key: f"x_{key}"), json_values(text, numbers), max_size=2)
serial = itertools.count()


@st.composite
def message(draw):
    sender = f"6281100000{draw(st.integers(0, 3))}"
    item = payloads.text_message(f"wamid.IN{next(serial)}", sender, draw(text), timestamp=1764213000)
    return {**item, **draw(unknown)}


@st.composite
def status(draw, callers_own):
    """A status; biz_opaque_callback_data as Meta echoes it: the caller's own, or Kirim's id before it
    (`callers_own` records what the subscriber must see then: the caller's part, or nothing)."""
    wamid = f"wamid.OUT{next(serial)}"
    item = payloads.status(wamid, draw(st.sampled_from(["sent", "delivered", "read", "failed"])),
                           f"6282200000{draw(st.integers(0, 3))}", timestamp=1764213000)  # fmt: skip
    if item["status"] == "failed":
        item["errors"] = [{"code": 131026, "title": draw(text), "error_data": {"details": draw(text)}, **draw(unknown)}]
    callback = draw(st.none() | text | text.map(lambda own: f"kirim:{new_public_id('msg')}|{own}"))
    if callback is not None:
        item["biz_opaque_callback_data"] = callback
        if callback.startswith("kirim:msg_"):
            callers_own[wamid] = callback.partition("|")[2] or None
    return {**item, **draw(unknown)}


@st.composite
def metas_payload(draw, numbers_to_use):
    """(the payload with Literal numbers, {status id: the callback data its subscriber must see})."""
    callers_own = {}
    entries = []
    for _ in range(draw(st.integers(1, 2))):
        changes = []
        for _ in range(draw(st.integers(1, 3))):
            messages = draw(st.lists(message(), max_size=3))
            statuses = draw(st.lists(status(callers_own), max_size=3))
            senders = dict.fromkeys(m["from"] for m in messages)
            recipients = dict.fromkeys(s["recipient_id"] for s in statuses)
            contacts = [payloads.contact(wa_id, draw(text)) for wa_id in senders]
            contacts += [payloads.recipient(wa_id) for wa_id in recipients]
            change = payloads.webhook(draw(st.sampled_from(numbers_to_use)), messages=messages, statuses=statuses,
                                      contacts=contacts)["entry"][0]["changes"][0]  # fmt: skip
            change["value"].update(draw(unknown))
            changes.append({**change, **draw(unknown)})
        entries.append({"id": "102290129340398", "changes": changes, **draw(unknown)})
    return {"object": "whatsapp_business_account", "entry": entries, **draw(unknown)}, callers_own


def metas_bytes(payload):
    """Meta's JSON text of `payload`, each Literal written as it is."""
    literals = []

    def placeholders(value):
        if isinstance(value, Literal):
            literals.append(value.text)
            return f"\ue000{len(literals) - 1}\ue000"
        if isinstance(value, dict):
            return {key: placeholders(item) for key, item in value.items()}
        return [placeholders(item) for item in value] if isinstance(value, list) else value

    raw = payloads.encode(placeholders(payload))
    for n, literal in enumerate(literals):
        raw = raw.replace(f'"\\ue000{n}\\ue000"'.encode(), literal.encode())
    return raw


def what_meta_would_send(sent, own_numbers, kind, callers_own):
    """The part of `sent` (parsed) that is `kind` items of `own_numbers`, as Meta would have sent it
    to a subscriber of those alone: every other field kept, contacts of those items only."""
    other_kind = "statuses" if kind == "messages" else "messages"
    user_of = (lambda m: m["from"]) if kind == "messages" else (lambda s: s["recipient_id"])
    entries = []
    for entry in sent["entry"]:
        changes = []
        for change in entry["changes"]:
            value = change["value"]
            if value["metadata"]["phone_number_id"] not in own_numbers or not value.get(kind):
                continue
            users = {user_of(item) for item in value[kind]}
            subset = {key: field for key, field in value.items() if key != other_kind}
            subset["contacts"] = [contact for contact in value["contacts"] if contact["wa_id"] in users]
            if kind == "statuses":
                subset["statuses"] = [as_its_sender_sees_it(s, callers_own) for s in value["statuses"]]
            changes.append({**change, "value": subset})
        if changes:
            entries.append({**entry, "changes": changes})
    return {**sent, "entry": entries} if entries else None


def as_its_sender_sees_it(status, callers_own):
    if status["id"] not in callers_own:
        return status
    if (own := callers_own[status["id"]]) is None:
        return {key: field for key, field in status.items() if key != "biz_opaque_callback_data"}
    return {**status, "biz_opaque_callback_data": own}


def meta_style(parsed):
    """A handler's re-encoding of the parsed body in Meta's style: compact, non-ASCII and `/` escaped."""
    return json.dumps(parsed, separators=(",", ":")).replace("/", "\\/").encode()


@pytest.mark.django_db
def test_metas_payloads_reach_each_org_as_meta_would_have_sent_them(
    phone_number, foreign_number, other_org, subscription, receiver, deliver
):
    theirs = make_subscription(other_org, url=THEIR_HOOK_URL)
    receiver.post(HOOK_URL, status=200)
    receiver.post(THEIR_HOOK_URL, status=200)
    secret_of = {HOOK_URL: subscription.secret, THEIR_HOOK_URL: theirs.secret}
    numbers_of = {HOOK_URL: {phone_number.phone_number_id}, THEIR_HOOK_URL: {foreign_number.phone_number_id}}
    budget = Budget()

    @FUZZ
    @given(metas_payload([phone_number.phone_number_id, foreign_number.phone_number_id, UNKNOWN_NUMBER]))
    def one_payload(drawn):
        if budget.spent():
            return
        payload, callers_own = drawn
        raw = metas_bytes(payload)
        sent = json.loads(raw)  # what Meta sent, as any subscriber parses it
        receiver.calls.reset()

        assert deliver(None, raw=raw).status_code == 200
        run_due()

        received = {}
        for call in receiver.calls:
            url, body, headers = call.request.url, call.request.body, call.request.headers
            received[url, headers["X-Kirim-Event"]] = json.dumps(json.loads(body))  # key order kept
            signature = headers["X-Hub-Signature-256"]
            assert signature == payloads.sign(body, secret_of[url])  # over the bytes as they came
            assert meta_style(json.loads(body)) == body  # so over a Meta-style re-encoding too
            assert "\x7f" in body.decode() or whatsapp_api_js_verifies(body, signature, secret_of[url])
        expected = {
            (url, event): json.dumps(body)
            for url, own_numbers in numbers_of.items()
            for event, kind in (("message.received", "messages"), ("message.status", "statuses"))
            if (body := what_meta_would_send(sent, own_numbers, kind, callers_own)) is not None
        }
        assert received == expected

    budget.run(one_payload)
    print(f"events round trip: {budget.ran} payloads in the budget")


@pytest.mark.django_db
def test_a_number_beyond_a_double_fails_its_message_alone_and_is_never_delivered_altered(
    phone_number, subscription, receiver, deliver
):
    """`1e400` is beyond a double (Meta's encoder never writes one): Python reads it as infinity, which
    JSON cannot write back. Kirim keeps the raw webhook and records that message as failed; the others
    of the payload reach the subscriber, exactly."""
    receiver.post(HOOK_URL, status=200)
    messages = [payloads.text_message(f"wamid.BIG{n}", "62811000001", MESSAGE_TEXT) for n in range(2)]
    messages[0]["x_reading"] = "BIG"
    messages[1]["x_reading"] = Literal("12345678901234567890.5")
    payload = payloads.webhook(phone_number.phone_number_id, messages=messages,
                               contacts=[payloads.contact("62811000001", CONTACT_NAME)])  # fmt: skip
    raw = metas_bytes(payload).replace(b'"BIG"', b"1e400")

    assert deliver(None, raw=raw).status_code == 200
    run_due()

    (call,) = receiver.calls
    delivered = json.loads(call.request.body)["entry"][0]["changes"][0]["value"]
    assert delivered["messages"] == [json.loads(raw)["entry"][0]["changes"][0]["value"]["messages"][1]]
    assert b"Infinity" not in call.request.body
    assert hmac.compare_digest(
        call.request.headers["X-Hub-Signature-256"],
        "sha256=" + hmac.new(subscription.secret.encode(), call.request.body, hashlib.sha256).hexdigest(),
    )
