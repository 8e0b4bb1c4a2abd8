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
