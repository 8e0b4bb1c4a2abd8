"""Published WhatsApp clients, pinned in requirements-dev.in, run unchanged against a live Kirim (the
Meta stand-in behind it): only their base URL and token differ from what they send to Meta. The lines
each needs are the table "Clients tested" of docs/guides/meta-compatible-api.md; keep the two in step."""

import asyncio

import heyoo
import httpx
import pytest
import python_whatsapp_bot
import pywa
import pywa.errors
import whatsapp_client
from pywa.types import Pagination, SentTemplateStatus
from pywa.types.templates import BodyText, TemplateLanguage

from fakemeta.server import TEMPLATES
from inbox.models import Direction, Message, Status

pytestmark = pytest.mark.django_db(transaction=True)

CONTACT = "6281200000042"
UNDELIVERABLE = {
    "message": "(#131026) Message undeliverable",
    "type": "OAuthException",
    "code": 131026,
    "error_data": {"messaging_product": "whatsapp", "details": "Receiver is incapable of receiving this message"},
    "fbtrace_id": "AUndeliverableTrace",
}


@pytest.fixture
def kirim(live_server, meta_stand_in):
    # No delivery webhooks: on SQLite they would race the next send for the one write lock.
    meta_stand_in.state.webhook_url = None
    return live_server.url


@pytest.fixture
def inbound(phone_number, make_message):
    return make_message(phone_number, contact=CONTACT)


def meta_received(stand_in):
    return [request["body"] for request in stand_in.state.requests]


def meta_fails_next_call(stand_in, error=UNDELIVERABLE):
    stand_in.state.fault = {"mode": "error", "status": 400, "error": error, "times": 1}


# pywa 4.5.0 -----------------------------------------------------------------------------------------


@pytest.fixture
def wa(kirim, api_key_secret, phone_number):
    return pywa_client(kirim, api_key_secret, phone_number)


def pywa_client(kirim, token, phone_number):
    # pywa fixes graph.facebook.com on the session it is given; the session is the caller's, and its
    # base URL is httpx's public attribute.
    session = httpx.Client()
    client = pywa.WhatsApp(phone_id=phone_number.phone_number_id, token=token, session=session)
    session.base_url = f"{kirim}/v23.0"
    return client


def test_pywa_marks_read_and_shows_typing(wa, inbound, phone_number, make_message, meta_stand_in):
    later = make_message(phone_number, contact="6281200000043")

    assert wa.mark_message_as_read(inbound.wamid).success is True
    assert wa.indicate_typing(later.wamid).success is True

    assert set(Message.objects.filter(direction=Direction.INBOUND).values_list("status", flat=True)) == {Status.READ}
    assert [body.get("typing_indicator") for body in meta_received(meta_stand_in)] == [None, {"type": "text"}]


def test_pywa_sends_text_reply_image_reaction_and_template(wa, inbound, meta_stand_in):
    text = wa.send_message(to=CONTACT, text="Halo!")
    reply = wa.send_message(to=CONTACT, text="Siap", reply_to_message_id=inbound.wamid)
    image = wa.send_image(to=CONTACT, image="https://example.com/menu.jpg", caption="Menu")
    reaction = wa.send_reaction(to=CONTACT, emoji="👍", message_id=inbound.wamid)
    template = wa.send_template(
        to=CONTACT, name="order_shipped", language=TemplateLanguage.ENGLISH_US, params=[BodyText.params("4411")]
    )

    sent = [text, reply, image, reaction, template]
    stored = {m.wamid: m for m in Message.objects.filter(direction=Direction.OUTBOUND)}
    assert all(m.id in stored and stored[m.id].status == Status.ACCEPTED for m in sent)
    assert [m.chat.id for m in sent] == [CONTACT] * 5
    bodies = meta_received(meta_stand_in)
    assert [b["type"] for b in bodies] == ["text", "text", "image", "reaction", "template"]
    assert bodies[1]["context"] == {"message_id": inbound.wamid}
    assert bodies[2]["image"] == {"link": "https://example.com/menu.jpg", "caption": "Menu"}
    assert bodies[3]["reaction"] == {"message_id": inbound.wamid, "emoji": "👍"}
    assert bodies[4]["template"]["name"] == "order_shipped"
    assert template.status == SentTemplateStatus.ACCEPTED  # Meta's message_status, passed on


def test_pywa_raises_metas_exception_classes(wa, kirim, phone_number, inbound, meta_stand_in):
    with pytest.raises(pywa.errors.InvalidParameter) as unknown:  # 131009, as Meta answers
        wa.mark_message_as_read("wamid.NOT-OURS")
    with pytest.raises(pywa.errors.ExpiredAccessToken):  # 190
        pywa_client(kirim, "kirim_live_not-a-key", phone_number).send_message(to=CONTACT, text="Halo")
    meta_fails_next_call(meta_stand_in)
    with pytest.raises(pywa.errors.MessageUndeliverable) as refused:  # Meta's own 131026
        wa.send_message(to=CONTACT, text="Halo")

    assert unknown.value.fbtrace_id.startswith("req_")
    assert (refused.value.code, refused.value.fbtrace_id) == (131026, "AUndeliverableTrace")
    assert refused.value.details == UNDELIVERABLE["error_data"]["details"]


def test_pywa_lists_templates_page_by_page_with_metas_summary(wa, phone_number):
    phone_number.waba_id = "102290129340398"
    phone_number.save(update_fields=["waba_id"])

    pages = [wa.get_templates(waba_id=phone_number.waba_id, pagination=Pagination(limit=10))]
    while pages[-1].has_next:
        # by cursor: pywa 4.5.0's own next() fails for templates (TemplatesResult takes no item_factory)
        pages.append(wa.get_templates(waba_id=phone_number.waba_id, pagination=Pagination(limit=10, after=pages[-1].after)))  # fmt: skip

    assert [template.name for page in pages for template in page] == [t["name"] for t in TEMPLATES]
    assert [len(list(page)) for page in pages] == [10, 10, 10]
    assert pages[0].total_count == len(TEMPLATES)


# whatsapp-client 0.2.0 ------------------------------------------------------------------------------


def whatsapp_client_run(kirim, token, phone_number, call):
    async def run():
        async with whatsapp_client.WhatsAppClient(
            phone_number_id=phone_number.phone_number_id, access_token=token, base_url=f"{kirim}/v23.0"
        ) as client:
            return await call(client)

    return asyncio.run(run())


def test_whatsapp_client_sends(kirim, api_key_secret, phone_number, meta_stand_in):
    async def sends(client):
        return [
            await client.send_text(to=CONTACT, body="Halo!"),
            await client.send_image(to=CONTACT, link="https://example.com/menu.jpg"),
            await client.send_location(to=CONTACT, latitude=-6.2, longitude=106.8, name="Toko"),
        ]

    answers = whatsapp_client_run(kirim, api_key_secret, phone_number, sends)

    assert [a.messaging_product for a in answers] == ["whatsapp"] * 3
    assert [a.contacts[0].input for a in answers] == [CONTACT] * 3
    stored = set(Message.objects.filter(direction=Direction.OUTBOUND).values_list("wamid", flat=True))
    assert {a.messages[0].id for a in answers} == stored


def test_whatsapp_client_errors_carry_metas_code(kirim, api_key_secret, phone_number, meta_stand_in):
    async def send(client):
        return await client.send_text(to=CONTACT, body="Halo!")

    with pytest.raises(whatsapp_client.WhatsAppAPIError) as bad_key:
        whatsapp_client_run(kirim, "kirim_live_not-a-key", phone_number, send)
    meta_fails_next_call(meta_stand_in)
    with pytest.raises(whatsapp_client.WhatsAppAPIError) as refused:
        whatsapp_client_run(kirim, api_key_secret, phone_number, send)

    assert (bad_key.value.status_code, bad_key.value.error_code) == (401, 190)
    assert (refused.value.error_code, refused.value.fbtrace_id) == (131026, "AUndeliverableTrace")


# heyoo 0.1.2 ----------------------------------------------------------------------------------------


def heyoo_client(kirim, token, phone_number):
    client = heyoo.WhatsApp(token=token, phone_number_id=phone_number.phone_number_id)
    # heyoo fixes graph.facebook.com in three public attributes, set in its constructor.
    client.base_url = f"{kirim}/v14.0"
    client.v15_base_url = f"{kirim}/v15.0"
    client.url = f"{client.base_url}/{phone_number.phone_number_id}/messages"
    return client


def test_heyoo_sends_and_marks_read(kirim, api_key_secret, phone_number, inbound, meta_stand_in):
    client = heyoo_client(kirim, api_key_secret, phone_number)

    sent = client.send_message("Halo!", CONTACT)
    read = client.mark_as_read(inbound.wamid)

    assert sent["messages"][0]["id"] == Message.objects.get(direction=Direction.OUTBOUND).wamid
    assert read == {"success": True}
    inbound.refresh_from_db()
    assert inbound.status == Status.READ


# python-whatsapp-bot 2.0.3 --------------------------------------------------------------------------


def test_python_whatsapp_bot_sends_and_marks_read(kirim, api_key_secret, phone_number, inbound, meta_stand_in):
    bot = python_whatsapp_bot.Whatsapp(number_id=phone_number.phone_number_id, token=api_key_secret)
    # The library fixes graph.facebook.com in three public attributes, set in its constructor.
    bot.base_url = f"{kirim}/v21.0"
    bot.msg_url = f"{bot.base_url}/{phone_number.phone_number_id}/messages"
    bot.media_url = f"{bot.base_url}/{phone_number.phone_number_id}/media"

    sent = bot.send_message(CONTACT, "Halo!")
    read = bot.mark_as_read({"id": inbound.wamid})

    assert sent.json()["messages"][0]["id"] == Message.objects.get(direction=Direction.OUTBOUND).wamid
    assert read.json() == {"success": True}
    inbound.refresh_from_db()
    assert inbound.status == Status.READ
