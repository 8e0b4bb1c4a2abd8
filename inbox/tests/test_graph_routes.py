"""Meta's own API at Kirim, its paths: versions or none, unknown paths and methods in Meta's error,
Kirim's own routes beside it, and the access token in the query."""

import logging

import pytest
from rest_framework.test import APIClient

from inbox.tests.graph_surface import (
    SEND,
    TEMPLATE,
    WABA_ID,
    assert_meta_error,
    messages_url,
    meta_templates_url,
    read_body,
)


def test_other_methods_and_unknown_paths_answer_metas_error_as_json(api, phone_number):
    assert_meta_error(api.get(messages_url(phone_number)), 405, 100)  # Meta's code; HTTP's own status
    for method in ("get", "post", "put", "delete"):
        response = getattr(api, method)("/v23.0/me/whatever")
        assert_meta_error(response, 400, 100, subcode=33)


def test_paths_without_a_version_answer_as_versioned_ones(api, waba, make_message, meta_accepts_reads, meta):
    # graph.facebook.com serves its paths without a version; @great-detail/whatsapp 9.2.0 drops it.
    message = make_message(waba)
    meta.get(meta_templates_url(), json={"data": [TEMPLATE], "paging": {"cursors": {}}})
    number_id = waba.phone_number_id

    receipt = api.post(f"/{number_id}/messages", read_body(message.wamid), format="json")
    templates = api.get(f"/{WABA_ID}/message_templates")

    assert receipt.json() == {"success": True}
    assert templates.json()["data"] == [TEMPLATE]
    assert_meta_error(api.post("/106540352249999/messages", SEND, format="json"), 400, 100, subcode=33)
    assert_meta_error(api.post(f"/{number_id}/messages", "a=1", content_type="text/plain"), 400, 100)
    assert_meta_error(api.get(f"/{number_id}/messages"), 405, 100)
    for path in (f"/{number_id}/whatever", "/1", "/1/2/3"):
        assert_meta_error(api.get(path), 400, 100, subcode=33)


def test_kirims_own_routes_are_not_taken_for_metas(client, db):
    assert client.get("/v1/health").json()["data"]["status"] == "ok"
    assert client.get("/v1/106540352249999/nothing").json()["error"]["code"] == "resource_not_found"
    assert client.get("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=wrong").status_code == 403
    assert client.get("/admin/").status_code == 302  # to the login page
    assert client.get("/no-such-page")["Content-Type"].startswith("text/html")  # a page for people


@pytest.mark.parametrize("version", ["v23", "v23.0.1", "v1234.0", "vX.0", "V23.0"])
def test_a_version_that_is_not_one_answers_metas_error_as_json(api, phone_number, version):
    response = api.post(f"/{version}/{phone_number.phone_number_id}/messages", {}, format="json")

    assert_meta_error(response, 400, 100, subcode=33)


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_every_unknown_url_under_v1_is_the_json_404(method, db):
    client = APIClient(enforce_csrf_checks=True)  # as a real client: no CSRF cookie, no token

    response = getattr(client, method)("/v1/no/such/thing")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_not_found"


def test_access_token_in_the_query_works_here_only_and_is_never_logged(
    api_key_secret, phone_number, make_message, meta_accepts_reads, caplog
):
    message = make_message(phone_number)
    client = APIClient()

    with caplog.at_level(logging.INFO):
        here = client.post(f"{messages_url(phone_number)}?access_token={api_key_secret}", read_body(message.wamid),
                           format="json")  # fmt: skip
    on_v1 = client.post(
        f"/v1/{phone_number.phone_number_id}/messages?access_token={api_key_secret}",
        read_body(message.wamid),
        format="json",
    )

    assert here.json() == {"success": True}
    assert on_v1.status_code == 401
    assert api_key_secret not in caplog.text
    assert "messages" in caplog.text  # the request's log line was there to look at
