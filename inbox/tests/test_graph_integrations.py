"""Chatwoot's and Evolution API's exact requests to Meta, sent to a live Kirim (the Meta stand-in behind
it) with only the base URL and the token changed, answered as Meta would. The shapes are taken from
their public source, cited per test:
- Chatwoot: app/services/whatsapp/providers/whatsapp_cloud_service.rb (sends, templates; base URL from
  WHATSAPP_CLOUD_BASE_URL) and app/services/whatsapp/incoming_message_whatsapp_cloud_service.rb (media);
- Evolution API: src/api/integrations/channel/meta/whatsapp.business.service.ts (WA_BUSINESS_URL and
  WA_BUSINESS_VERSION) and src/api/services/template.service.ts.
Checked against those files as published: chatwoot/chatwoot at 0018330e (sends with `context: nil` as
null, templates at v14.0 with ?access_token= following paging.next, media_url at v13.0) and
EvolutionAPI/evolution-api at 00e191ff (post() to `${URL}/${VERSION}/${number}/${params}` with a Bearer
header, returning `e.response?.data?.error`; media by id, then its url with the same Bearer)."""

import pytest
import requests

from fakemeta.server import MEDIA_BYTES, TEMPLATES
from inbox.models import Direction, Message, Status
from testing.meta import as_the_client_sent_it

pytestmark = pytest.mark.django_db(transaction=True)

CONTACT = "6281200000042"
WABA_ID = "102290129340398"


@pytest.fixture
def kirim(live_server, meta_stand_in, phone_number):
    meta_stand_in.state.webhook_url = None  # no delivery webhooks racing the next send on SQLite
    phone_number.waba_id = WABA_ID
    phone_number.save(update_fields=["waba_id"])
    return live_server.url


@pytest.fixture
def headers(api_key_secret):
    """Chatwoot's api_headers; Evolution API's are the same two."""
    return {"Authorization": f"Bearer {api_key_secret}", "Content-Type": "application/json"}


@pytest.fixture
def inbound_image(phone_number, make_message):
    """An image a contact sent, as Meta's webhook stored it: media Kirim reads from Meta for the org."""
    image = {"id": "1037543291543636", "mime_type": "image/jpeg"}
    make_message(phone_number, contact=CONTACT, type="image", payload={"type": "image", "image": image})
    return image["id"]


def sent_id(response):
    """Chatwoot's process_response: `response['messages'].first['id']`."""
    assert response.status_code == 200, response.text
    return response.json()["messages"][0]["id"]


# Chatwoot -------------------------------------------------------------------------------------------


def test_chatwoot_text_attachment_template_and_interactive_sends(kirim, headers, phone_number, meta_stand_in):
    url = f"{kirim}/v13.0/{phone_number.phone_number_id}/messages"  # phone_id_path
    bodies = [
        # send_text_message: whatsapp_reply_context is nil without a reply, and is sent as null
        {"messaging_product": "whatsapp", "context": None, "to": CONTACT, "text": {"body": "Halo"}, "type": "text"},
        # send_attachment_message
        {"messaging_product": "whatsapp", "context": None, "to": CONTACT, "type": "image",
         "image": {"link": "https://chatwoot.example/a.jpg", "caption": "Menu"}},
        # send_template with template_body_parameters
        {"messaging_product": "whatsapp", "recipient_type": "individual", "to": CONTACT, "type": "template",
         "template": {"name": "order_shipped", "language": {"policy": "deterministic", "code": "en_US"},
                      "components": [{"type": "body", "parameters": [{"type": "text", "text": "4411"}]}]}},
        # send_interactive_text_message
        {"messaging_product": "whatsapp", "to": CONTACT, "type": "interactive",
         "interactive": {"type": "button", "body": {"text": "Pick"},
                         "action": {"buttons": [{"type": "reply", "reply": {"id": "1", "title": "Yes"}}]}}},
    ]  # fmt: skip

    wamids = [sent_id(requests.post(url, headers=headers, json=body, timeout=10)) for body in bodies]

    stored = dict(Message.objects.filter(direction=Direction.OUTBOUND).values_list("wamid", "status"))
    assert stored == {wamid: Status.ACCEPTED for wamid in wamids}
    assert [as_the_client_sent_it(r["body"]) for r in meta_stand_in.state.requests] == bodies


def test_chatwoot_syncs_templates_with_access_token_following_next(kirim, api_key_secret):
    # sync_templates / fetch_whatsapp_templates: HTTParty.get(url) with no headers, then paging.next as given
    url = f"{kirim}/v14.0/{WABA_ID}/message_templates?access_token={api_key_secret}"  # business_account_path
    templates, pages = [], 0
    while url:
        response = requests.get(url, timeout=10)
        assert response.status_code == 200, response.text
        templates += response.json()["data"]
        url, pages = response.json()["paging"].get("next"), pages + 1

    assert templates == TEMPLATES
    assert pages == 2  # Meta's default page of 25, then the rest


def test_chatwoot_validates_its_config_and_a_wrong_key_fails_it(kirim, api_key_secret):
    # validate_provider_config?: response.success? of the same GET
    url = f"{kirim}/v14.0/{WABA_ID}/message_templates?access_token="
    assert requests.get(url + api_key_secret, timeout=10).ok
    refused = requests.get(url + "kirim_live_wrong", timeout=10)
    assert not refused.ok and refused.json()["error"]["code"] == 190


def test_chatwoot_downloads_inbound_media(kirim, headers, inbound_image):
    # media_url(media_id) = "#{api_base_path}/v13.0/#{media_id}", then Down.download(url, headers: api_headers)
    described = requests.get(f"{kirim}/v13.0/{inbound_image}", headers=headers, timeout=10)
    content = requests.get(described.json()["url"], headers=headers, timeout=10)

    assert described.json()["mime_type"] == "image/jpeg"
    assert content.content == MEDIA_BYTES


# Evolution API --------------------------------------------------------------------------------------


def test_evolution_api_text_reply_reaction_upload_and_read(
    kirim, headers, api_key_secret, phone_number, make_message, meta_stand_in
):
    inbound = make_message(phone_number, contact=CONTACT)
    base = f"{kirim}/v20.0/{phone_number.phone_number_id}"  # `${urlServer}/${version}/${this.number}`

    text = requests.post(f"{base}/messages", headers=headers, timeout=10, json={
        "messaging_product": "whatsapp", "recipient_type": "individual", "type": "text", "to": CONTACT,
        "text": {"body": "Halo", "preview_url": False}, "context": {"message_id": inbound.wamid}})  # fmt: skip
    reaction = requests.post(f"{base}/messages", headers=headers, timeout=10, json={
        "messaging_product": "whatsapp", "recipient_type": "individual", "type": "reaction", "to": CONTACT,
        "reaction": {"message_id": inbound.wamid, "emoji": "👍"}})  # fmt: skip
    # uploadMedia: FormData with file, type and messaging_product; then the media is sent by id
    uploaded = requests.post(
        f"{base}/media",
        headers={"Authorization": f"Bearer {api_key_secret}"},
        files={"file": ("a.jpg", b"\xff\xd8jpeg", "image/jpeg")},
        data={"type": "image/jpeg", "messaging_product": "whatsapp"},
        timeout=10,
    )
    image = requests.post(f"{base}/messages", headers=headers, timeout=10, json={
        "messaging_product": "whatsapp", "recipient_type": "individual", "type": "image", "to": CONTACT,
        "image": {"id": uploaded.json()["id"], "caption": "Menu"}})  # fmt: skip
    # markMessageAsRead
    read = requests.post(f"{base}/messages", headers=headers, timeout=10,
                         json={"messaging_product": "whatsapp", "status": "read", "message_id": inbound.wamid})  # fmt: skip

    assert all(sent_id(r).startswith("wamid.") for r in (text, reaction, image))
    assert read.json() == {"success": True}
    inbound.refresh_from_db()
    assert inbound.status == Status.READ


def test_evolution_api_reads_templates_and_media(kirim, headers, inbound_image):
    templates = requests.get(f"{kirim}/v20.0/{WABA_ID}/message_templates", headers=headers, timeout=10)
    # getMedia: GET `${urlServer}/${version}/${id}`, then the url with the same Bearer header
    url = requests.get(f"{kirim}/v20.0/{inbound_image}", headers=headers, timeout=10).json()["url"]

    assert templates.json()["data"] == TEMPLATES[:25]
    assert requests.get(url, headers=headers, timeout=10).content == MEDIA_BYTES


def test_evolution_api_reads_metas_error_on_a_refused_send(kirim, headers, phone_number, meta_stand_in):
    # post() returns `e.response?.data?.error` and the caller reads its code and message
    meta_stand_in.state.fault = {"mode": "error", "status": 400, "times": 1,
                                 "error": {"message": "(#131026) Message undeliverable", "type": "OAuthException",
                                           "code": 131026, "fbtrace_id": "ATrace"}}  # fmt: skip
    response = requests.post(
        f"{kirim}/v20.0/{phone_number.phone_number_id}/messages",
        headers=headers,
        json={"messaging_product": "whatsapp", "recipient_type": "individual", "type": "text", "to": CONTACT,
              "text": {"body": "Halo", "preview_url": False}},
        timeout=10,
    )  # fmt: skip

    assert response.status_code == 400
    assert response.json()["error"]["code"] == 131026
