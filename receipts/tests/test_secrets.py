"""API keys and Meta tokens never show up in logs, responses or exception text."""

import logging

import pytest
import requests

from core.errors import UpstreamError
from inbox.models import ApiKey
from meta import graph as meta_graph
from testing.meta import graph_messages_url


@pytest.fixture
def everything_logged(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def test_secrets_stay_out_of_logs_responses_and_errors(
    api, api_key_secret, phone_number, make_message, meta, everything_logged
):
    token = phone_number.access_token
    url = graph_messages_url(phone_number)
    meta.post(url, json={"success": True})
    meta.post(url, status=401, json={"error": {"message": "Invalid OAuth access token", "code": 190}})
    meta.post(url, body=requests.ConnectionError(f"refused {url}"))
    first, second, third = (make_message(phone_number, contact=str(n)) for n in range(3))
    bodies, raised = [], []

    for message in (first, second, third, first):
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": message.wamid}
        response = api.post(f"/v1/{phone_number.phone_number_id}/messages", body, format="json")
        bodies.append(response.content.decode() + str(dict(response.items())))
    wrong_key = api.post(
        f"/v1/{phone_number.phone_number_id}/messages", {}, format="json", HTTP_AUTHORIZATION="Bearer kirim_live_x"
    )
    bodies.append(wrong_key.content.decode())
    with pytest.raises(UpstreamError) as unregistered:  # responses refuses a call nothing was registered for
        meta_graph.mark_read(phone_number, "wamid.TRACE")
    raised.append(unregistered.value)

    assert [b.count('"status":"read"') for b in bodies[:4]] == [1, 0, 0, 1]  # the flows did run
    texts = {
        "logs": everything_logged.text,
        "responses": "\n".join(bodies),
        "exceptions": " ".join(f"{e} {e.upstream} {e!r}" for e in raised),
        "reprs": f"{phone_number!r} {phone_number} {ApiKey.objects.first()!r} {ApiKey.objects.first()}",
    }
    for where, text in texts.items():
        assert token not in text, where
        assert api_key_secret not in text, where
        assert api_key_secret[len("kirim_live_") + 4 :] not in text, where
