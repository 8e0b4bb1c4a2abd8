"""WhatsApp clients from npm (package.json, installed from package-lock.json by `npm ci`) run unchanged
against a live Kirim, the Meta stand-in behind it: tests/node/clients.mjs makes each call in node and
prints the answer. The lines each needs are the table "Clients tested" of
docs/guides/meta-compatible-api.md; keep the two in step."""

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from fakemeta.server import MEDIA_BYTES
from inbox.models import Direction, Message, Status

pytestmark = pytest.mark.django_db(transaction=True)

CONTACT = "6281200000042"
TEXT = "Café crème, s'il vous plaît ☕🥐 — مرحبا، هل المقهى مفتوح؟"
MEDIA_ID = "1037543291543636"  # the stand-in's


@pytest.fixture
def kirim(live_server, meta_stand_in):
    meta_stand_in.state.webhook_url = None  # no delivery webhooks racing the next send on SQLite
    return live_server.url


@pytest.fixture
def node_client(node, kirim, api_key_secret, phone_number):
    """Run `CLIENT CALL` of tests/node/clients.mjs with these arguments (the number's id as `phone`);
    what it answered. None of these calls should throw."""

    def call(client, name, **arguments):
        script = Path(settings.BASE_DIR) / "tests" / "node" / "clients.mjs"
        arguments = json.dumps({"phone": phone_number.phone_number_id, **arguments})
        done = subprocess.run(
            [node, script, client, name, arguments], check=False, cwd=settings.BASE_DIR, capture_output=True,
            text=True, timeout=60, env={**os.environ, "KIRIM_URL": kirim, "KIRIM_KEY": api_key_secret},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout.splitlines()[-1])
        assert "thrown" not in answer, answer
        return answer

    return call


@pytest.fixture
def inbound(phone_number, make_message):
    return make_message(phone_number, contact=CONTACT)


@pytest.fixture
def inbound_image(phone_number, make_message):
    """An image the contact sent, as Meta's webhook stored it: media Kirim reads from Meta for the org."""
    image = {"id": MEDIA_ID, "mime_type": "image/jpeg"}
    make_message(phone_number, contact=CONTACT, type="image", payload={"type": "image", "image": image})
    return MEDIA_ID


def sent_wamids():
    return list(Message.objects.filter(direction=Direction.OUTBOUND).order_by("pk").values_list("wamid", flat=True))


def meta_received(stand_in):
    return [request["body"] for request in stand_in.state.requests]


# whatsapp-api-js 6.3.0 ------------------------------------------------------------------------------


def test_whatsapp_api_js_sends_reacts_and_marks_read(node_client, inbound, meta_stand_in):
    text = node_client("whatsapp-api-js", "send_text", to=CONTACT, body=TEXT)
    reaction = node_client("whatsapp-api-js", "react", to=CONTACT, wamid=inbound.wamid, emoji="🙏")
    read = node_client("whatsapp-api-js", "mark_read", wamid=inbound.wamid, typing="text")
    unknown = node_client("whatsapp-api-js", "mark_read", wamid="wamid.NOT-OURS")

    assert [text["messages"][0]["id"], reaction["messages"][0]["id"]] == sent_wamids()
    assert text["contacts"][0]["input"] == CONTACT
    assert read == {"success": True}
    assert unknown["error"]["code"] == 131009  # as Meta answers, which the library hands back as it is
    inbound.refresh_from_db()
    assert inbound.status == Status.READ
    bodies = meta_received(meta_stand_in)
    assert bodies[0]["text"]["body"] == TEXT
    assert bodies[1]["reaction"] == {"message_id": inbound.wamid, "emoji": "🙏"}
    assert bodies[2]["typing_indicator"] == {"type": "text"}


def test_whatsapp_api_js_downloads_media(node_client, inbound_image):
    media = node_client("whatsapp-api-js", "download", media=inbound_image)

    assert media["described"]["mime_type"] == "image/jpeg"
    assert base64.b64decode(media["bytes"]) == MEDIA_BYTES


# @kapso/whatsapp-cloud-api 0.3.0 --------------------------------------------------------------------


def test_kapso_sends_and_marks_read(node_client, inbound, meta_stand_in):
    text = node_client("kapso", "send_text", to=CONTACT, body=TEXT)
    read = node_client("kapso", "mark_read", wamid=inbound.wamid, typing="text")

    assert text["messages"][0]["id"] == sent_wamids()[0]
    assert read == {"success": True}
    inbound.refresh_from_db()
    assert inbound.status == Status.READ
    assert [b.get("text", {}).get("body") for b in meta_received(meta_stand_in)] == [TEXT, None]


def test_kapso_downloads_media_sending_no_key_to_a_host_not_its_own(node_client, inbound_image):
    media = node_client("kapso", "download", media=inbound_image)

    assert base64.b64decode(media["bytes"]) == MEDIA_BYTES


# @great-detail/whatsapp 9.2.0 -----------------------------------------------------------------------


def test_great_detail_sends_and_marks_read(node_client, inbound, meta_stand_in):
    text = node_client("great-detail", "send_text", to=CONTACT, body=TEXT)
    read = node_client("great-detail", "mark_read", wamid=inbound.wamid)

    assert text["messages"][0]["id"] == sent_wamids()[0]
    assert read == {"success": True}
    inbound.refresh_from_db()
    assert inbound.status == Status.READ
