"""Meta's answer to a send and its status webhooks travel apart and race to Kirim: 200 sends through a
live Kirim and the Meta stand-in, each `sent` webhook posted before, as or after its answer, on both
doors. No answer may lack Meta's wamid, whichever arrives first."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import postgres_only, wait_for
from inbox.models import Direction, EarlyStatus, Message, Status

# SQLite's test database is one in-memory connection that the live server's threads share: no races.
pytestmark = [postgres_only, pytest.mark.django_db(transaction=True)]

SENDS = 200
CLIENTS = 8
# ms from Meta's answer to the send's `sent` webhook, taken in turn: before it (Kirim has applied the
# webhook when the answer leaves), as it leaves, just after (while Kirim settles the send), well after.
STATUS_DELAYS_MS = [-5, 0, 0, 1, 3, 20]
DOORS = {  # where a send's answer carries Meta's wamid
    "/v1": lambda answer: answer["data"]["message_id"],
    "/v23.0": lambda answer: answer["messages"][0]["id"],
}


def test_every_send_answers_its_wamid_whichever_of_answer_and_status_webhook_comes_first(
    live_server, meta_stand_in, api_key_secret, phone_number
):
    requests.post(f"{meta_stand_in.url}/_stand_in/status_delay", json={"ms": STATUS_DELAYS_MS}).raise_for_status()

    def send(n):
        """Send #n, then replay it with its Idempotency-Key: both answers."""
        door = list(DOORS)[n % len(DOORS)]
        body = {"messaging_product": "whatsapp", "to": f"62812000{n:05d}", "type": "text", "text": {"body": f"#{n}"}}
        url = f"{live_server.url}{door}/{phone_number.phone_number_id}/messages"
        headers = {"Authorization": f"Bearer {api_key_secret}", "Idempotency-Key": f"race-{n}"}
        with requests.Session() as session:
            return door, [session.post(url, json=body, headers=headers, timeout=30) for _ in range(2)]

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(send, range(SENDS)))

    assert {(first.status_code, replayed.status_code) for _, (first, replayed) in results} == {(200, 200)}
    answered = [(door, DOORS[door](first.json()), DOORS[door](replayed.json())) for door, (first, replayed) in results]
    without_wamid = [door for door, wamid, _ in answered if wamid is None]
    assert not without_wamid, f"{len(without_wamid)} of {SENDS} answers without their wamid"
    assert all(replayed == wamid for _, wamid, replayed in answered)  # Idempotency-Key replays too
    wamid_of_row = dict(Message.objects.filter(direction=Direction.OUTBOUND).values_list("external_id", "wamid"))
    assert sorted(wamid for _, wamid, _ in answered) == sorted(wamid_of_row.values())  # each its own send's
    on_v1 = [first.json()["data"] for door, (first, _) in results if door == "/v1"]
    assert all(wamid_of_row[data["id"]] == data["message_id"] for data in on_v1)
    assert {"accepted", "sent"} <= {data["status"] for data in on_v1}  # Meta's answer came first, or its webhook

    state = meta_stand_in.state
    assert wait_for(lambda: len(state.webhooks_posted) == 2 * SENDS, seconds=30)
    assert set(state.webhooks_posted) == {200}
    assert wait_for(lambda: Message.objects.filter(status=Status.DELIVERED).count() == SENDS, seconds=30)
    assert not EarlyStatus.objects.exists()
