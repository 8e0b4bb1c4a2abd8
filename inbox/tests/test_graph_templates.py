"""Message templates through Meta's own API at Kirim: Meta's pages with paging that points back at
Kirim, another org's WABA as missing, and what each endpoint takes."""

from rest_framework.test import APIClient

from inbox.tests.graph_surface import TEMPLATE, WABA_ID, assert_meta_error, messages_url, meta_templates_url


def test_templates_come_from_meta_with_paging_that_points_back_at_kirim(api_key_secret, waba, meta):
    meta.get(
        meta_templates_url(),
        json={"data": [TEMPLATE], "paging": {"cursors": {"before": "B1", "after": "A1"}, "next": "https://graph..."}},
    )
    client = APIClient()

    response = client.get(f"/v14.0/{WABA_ID}/message_templates?access_token={api_key_secret}&status=APPROVED")

    assert response.status_code == 200
    body = response.json()
    assert body["data"] == [TEMPLATE]
    assert body["paging"]["cursors"] == {"after": "A1"}
    assert body["paging"]["next"] == (
        f"http://testserver/v14.0/{WABA_ID}/message_templates?access_token={api_key_secret}&status=APPROVED&after=A1"
    )
    request = meta.calls[0].request
    assert request.params == {"status": "APPROVED", "limit": "25"}
    assert request.headers["Authorization"] == f"Bearer {waba.access_token}"


def test_the_last_templates_page_has_no_next(api, waba, meta):
    meta.get(meta_templates_url(), json={"data": [TEMPLATE], "paging": {"cursors": {"after": "A1"}}})

    body = api.get(f"/v23.0/{WABA_ID}/message_templates?after=A0").json()

    assert "next" not in body["paging"]
    assert meta.calls[0].request.params["after"] == "A0"


def test_another_orgs_waba_is_metas_missing_object(api, phone_number, foreign_number, meta):
    foreign_number.waba_id = WABA_ID
    foreign_number.save(update_fields=["waba_id"])

    assert_meta_error(api.get(f"/v23.0/{WABA_ID}/message_templates"), 400, 100, subcode=33)
    assert len(meta.calls) == 0


def test_a_wrong_content_type_is_told_what_the_endpoint_takes(api, phone_number, meta):
    upload_as_json = api.post(f"/v23.0/{phone_number.phone_number_id}/media", {"type": "image/png"}, format="json")
    send_as_form = api.post(messages_url(phone_number), {"to": "62812"}, format="multipart")

    upload_hint = assert_meta_error(upload_as_json, 400, 100)["error_data"]["details"]
    assert "multipart/form-data" in upload_hint and "application/json" not in upload_hint
    assert all(f"`{field}`" in upload_hint for field in ("file", "type", "messaging_product"))
    assert assert_meta_error(send_as_form, 400, 100)["error_data"]["details"] == "Send the body as application/json."
    assert len(meta.calls) == 0
