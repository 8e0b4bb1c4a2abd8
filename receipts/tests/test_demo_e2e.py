"""What `make run` serves: the README's curl against the demo data and the local Meta stand-in."""

import pytest
import requests
from django.core.management import call_command


def read_env(path):
    return dict(line.removeprefix("export ").split("=", 1) for line in path.read_text().splitlines())


@pytest.mark.django_db(transaction=True)
def test_readme_curl_reads_once_then_answers_the_same_without_meta(live_server, meta_stand_in, tmp_path):
    call_command("seed_demo", env_file=str(tmp_path / "demo.env"))
    demo = read_env(tmp_path / "demo.env")

    def curl():
        return requests.post(
            f"{live_server.url}/v1/{demo['PHONE_ID']}/messages",
            headers={"Authorization": f"Bearer {demo['KIRIM_KEY']}", "Content-Type": "application/json"},
            json={"messaging_product": "whatsapp", "status": "read", "message_id": demo["WAMID"]},
            timeout=10,
        )

    first = curl()
    recorded_after_first = list(meta_stand_in.state.requests)
    second = curl()

    assert first.status_code == second.status_code == 200
    assert set(first.json()) == {"data", "request_id"}
    assert first.json()["data"]["object"] == "message"
    assert first.json()["data"]["status"] == "read"
    assert first.json()["data"]["message_id"] == demo["WAMID"]
    assert first.json()["data"]["id"].startswith("msg_")
    assert second.json()["data"] == first.json()["data"]
    assert [r["body"] for r in recorded_after_first] == [
        {"messaging_product": "whatsapp", "status": "read", "message_id": demo["WAMID"]}
    ]
    assert recorded_after_first[0]["phone_number_id"] == demo["PHONE_ID"]
    assert len(meta_stand_in.state.requests) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "fault, upstream_code, attempts",
    [
        ({"mode": "error", "status": 400, "error": {"message": "Receipt window passed", "code": 131026}}, 131026, 1),
        # Meta's throughput limit: retried after its wait (meta.graph.client.RETRY_AFTER), then given up.
        ({"mode": "error", "status": 400, "error": {"message": "(#130429) Rate limit hit", "code": 130429}}, 130429, 3),
        ({"mode": "error", "status": 500}, 131000, 3),
        ({"mode": "malformed", "status": 502}, None, 3),
        ({"mode": "close"}, None, 3),
        ({"mode": "timeout", "seconds": 2}, None, 3),
    ],
)
def test_stand_in_faults_become_502_and_recovery_reads(
    live_server, meta_stand_in, api_key_secret, phone_number, make_message, settings, fault, upstream_code, attempts
):
    settings.META_TIMEOUT = 0.5
    message = make_message(phone_number)
    requests.post(f"{meta_stand_in.url}/_stand_in/faults", json=fault, timeout=5)

    def read():
        return requests.post(
            f"{live_server.url}/v1/{phone_number.phone_number_id}/messages",
            headers={"Authorization": f"Bearer {api_key_secret}"},
            json={"messaging_product": "whatsapp", "status": "read", "message_id": message.wamid},
            timeout=10,
        )

    failed = read()
    assert failed.status_code == 502
    assert failed.json()["error"]["code"] == "whatsapp_upstream_error"
    assert failed.json()["error"]["upstream"]["code"] == upstream_code
    assert len(meta_stand_in.state.requests) == attempts  # receipts are idempotent: transient faults retried
    message.refresh_from_db()
    assert message.status == "received"

    requests.delete(f"{meta_stand_in.url}/_stand_in/faults", timeout=5)
    assert read().status_code == 200
    message.refresh_from_db()
    assert message.status == "read"
