"""Meta's own API at Kirim (/{version}/...): Meta's answers and errors over the same services as /v1/."""

import json
import logging

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from inbox.models import Direction, Message, Status
from testing.meta import as_the_client_sent_it, graph_messages_url

SEND = {"messaging_product": "whatsapp", "to": "+62 812-3456-7801", "type": "text", "text": {"body": "Halo"}}
META_SENT = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": "+62 812-3456-7801", "wa_id": "6281234567801"}],
    "messages": [{"id": "wamid.SENT1"}],
}
META_REFUSAL = {
    "message": "(#131047) Re-engagement message",
    "type": "OAuthException",
    "code": 131047,
    "error_subcode": 2494010,
    "error_data": {"messaging_product": "whatsapp", "details": "More than 24 hours have passed"},
    "fbtrace_id": "AMetaTraceId",
}


def messages_url(phone_number, version="v23.0"):
    return f"/{version}/{phone_number.phone_number_id}/messages"


def read_body(wamid, **extra):
    return {"messaging_product": "whatsapp", "status": "read", "message_id": wamid, **extra}


def assert_meta_error(response, status, code, subcode=None):
    """Meta's error shape exactly: an int code, error_data, a trace id; Kirim's own trace is its request id."""
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) <= {"message", "type", "code", "error_subcode", "error_data", "fbtrace_id", "is_transient"}
    assert error["code"] == code and isinstance(error["code"], int)
    assert error.get("error_subcode") == subcode
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert isinstance(error["message"], str) and error["fbtrace_id"]
    return error


@pytest.mark.parametrize("version", ["v13.0", "v14.0", "v23.0", "v27.0"])
def test_a_read_receipt_answers_success_true_on_any_version(
    api, phone_number, make_message, meta_accepts_reads, version
):
    message = make_message(phone_number)

    response = api.post(messages_url(phone_number, version), read_body(message.wamid), format="json")

    assert response.status_code == 200
    assert response.json() == {"success": True}
    message.refresh_from_db()
    assert message.status == Status.READ
    assert json.loads(meta_accepts_reads.calls[0].request.body)["message_id"] == message.wamid


def test_a_retried_receipt_answers_the_same_without_calling_meta(api, phone_number, make_message, meta_accepts_reads):
    message = make_message(phone_number)

    answers = [api.post(messages_url(phone_number), read_body(message.wamid), format="json") for _ in range(2)]

    assert [a.json() for a in answers] == [{"success": True}] * 2
    assert len(meta_accepts_reads.calls) == 1


def test_typing_goes_to_meta_and_a_null_typing_indicator_is_none(api, phone_number, make_message, meta_accepts_reads):
    typing, plain = make_message(phone_number), make_message(phone_number, contact="6281200000002")

    api.post(messages_url(phone_number), read_body(typing.wamid, typing_indicator={"type": "text"}), format="json")
    api.post(messages_url(phone_number), read_body(plain.wamid, typing_indicator=None), format="json")

    sent = [json.loads(call.request.body) for call in meta_accepts_reads.calls]
    assert sent[0]["typing_indicator"] == {"type": "text"}
    assert "typing_indicator" not in sent[1]


def test_a_send_answers_metas_shape_and_keeps_the_row(api, phone_number, meta):
    meta.post(graph_messages_url(phone_number), json=META_SENT)

    response = api.post(messages_url(phone_number), SEND, format="json")

    assert response.status_code == 200
    assert response.json() == META_SENT
    message = Message.objects.get(direction=Direction.OUTBOUND)
    assert (message.wamid, message.status, message.contact_wa_id) == ("wamid.SENT1", Status.ACCEPTED, "6281234567801")


TEMPLATE_SEND = {"messaging_product": "whatsapp", "to": "+62 812-3456-7801", "type": "template",
                 "template": {"name": "promo_image", "language": {"code": "en_US"}}}  # fmt: skip


@pytest.mark.parametrize("message_status", ["accepted", "held_for_quality_assessment"])
def test_metas_message_status_is_passed_on_as_meta_gave_it(api, phone_number, meta, message_status):
    paced = {**META_SENT, "messages": [{"id": "wamid.SENT1", "message_status": message_status}]}
    meta.post(graph_messages_url(phone_number), json=paced)
    headers = {"HTTP_IDEMPOTENCY_KEY": "promo-1"}

    first, replayed = (api.post(messages_url(phone_number), TEMPLATE_SEND, format="json", **headers) for _ in range(2))

    assert first.json() == replayed.json() == paced
    assert Message.objects.get().message_status == message_status
    on_v1 = api.get(f"/v1/{phone_number.phone_number_id}/messages/{Message.objects.get().external_id}")
    assert on_v1.json()["data"]["message_status"] == message_status


def test_a_send_answers_metas_message_status_on_v1_too_and_null_when_meta_gave_none(api, phone_number, meta):
    meta.post(
        graph_messages_url(phone_number),
        json={**META_SENT, "messages": [{"id": "wamid.PACED", "message_status": "accepted"}]},
    )
    meta.post(graph_messages_url(phone_number), json=META_SENT)
    v1_url = f"/v1/{phone_number.phone_number_id}/messages"

    paced, plain = (api.post(v1_url, body, format="json").json()["data"] for body in (TEMPLATE_SEND, SEND))

    assert (paced["message_id"], paced["message_status"]) == ("wamid.PACED", "accepted")
    assert (plain["message_id"], plain["message_status"]) == ("wamid.SENT1", None)


@pytest.mark.parametrize("prefix", ["/v23.0", "/v1"])
def test_null_is_accepted_where_meta_accepts_it_and_passed_on(api, phone_number, meta, prefix):
    meta.post(graph_messages_url(phone_number), json=META_SENT)
    body = {**SEND, "context": None, "recipient_type": None, "image": None}

    response = api.post(f"{prefix}/{phone_number.phone_number_id}/messages", body, format="json")

    assert response.status_code == 200, response.content
    assert as_the_client_sent_it(json.loads(meta.calls[0].request.body)) == body


def test_an_idempotency_key_replays_metas_answer_exactly_with_one_send(api, phone_number, meta):
    meta.post(graph_messages_url(phone_number), json=META_SENT)
    headers = {"HTTP_IDEMPOTENCY_KEY": "order-4411"}

    first, again = (api.post(messages_url(phone_number), SEND, format="json", **headers) for _ in range(2))

    assert first.json() == again.json() == META_SENT
    assert again["Idempotent-Replayed"] == "true"
    assert len(meta.calls) == 1


def test_the_same_key_on_v1_and_on_metas_shape_is_no_second_send(api, phone_number, meta):
    meta.post(graph_messages_url(phone_number), json=META_SENT)
    headers = {"HTTP_IDEMPOTENCY_KEY": "order-4411"}
    api.post(f"/v1/{phone_number.phone_number_id}/messages", SEND, format="json", **headers)

    response = api.post(messages_url(phone_number), SEND, format="json", **headers)

    assert_meta_error(response, 422, 100)
    assert len(meta.calls) == 1


def test_unknown_and_foreign_wamids_are_131009_with_the_same_body(
    api, phone_number, foreign_number, make_message, meta
):
    foreign = make_message(foreign_number)

    unknown = api.post(messages_url(phone_number), read_body("wamid.NOPE"), format="json")
    other = api.post(messages_url(phone_number), read_body(foreign.wamid), format="json")

    for response in (unknown, other):
        error = assert_meta_error(response, 400, 131009)
        assert error["fbtrace_id"] == response["X-Request-Id"]
    strip = lambda r: {k: v for k, v in r.json()["error"].items() if k != "fbtrace_id"}
    assert strip(unknown) == strip(other)
    assert len(meta.calls) == 0


def test_an_outbound_wamid_is_131009(api, phone_number, make_message, meta):
    outbound = make_message(phone_number, direction=Direction.OUTBOUND)

    assert_meta_error(api.post(messages_url(phone_number), read_body(outbound.wamid), format="json"), 400, 131009)


def test_unknown_and_foreign_numbers_are_metas_missing_object(api, phone_number, foreign_number, meta):
    for number_id in ("106540352249999", foreign_number.phone_number_id):
        response = api.post(f"/v23.0/{number_id}/messages", SEND, format="json")
        assert_meta_error(response, 400, 100, subcode=33)


@pytest.mark.parametrize(
    "body", [{**SEND, "to": None}, {**SEND, "text": {"body": ""}}, {"messaging_product": "whatsapp"}, ["a list"]]
)
def test_bad_bodies_are_code_100_naming_the_field(api, phone_number, meta, body):
    error = assert_meta_error(api.post(messages_url(phone_number), body, format="json"), 400, 100)
    assert error["type"] == "OAuthException"
    assert len(meta.calls) == 0


@pytest.mark.parametrize(("raw", "content_type"), [("{not json", "application/json"), ("a=1", "text/plain")])
def test_a_body_that_is_not_json_is_code_100(api, phone_number, raw, content_type):
    response = api.post(messages_url(phone_number), raw, content_type=content_type)

    assert_meta_error(response, 400, 100)


@pytest.mark.parametrize("authorization", [None, "Bearer kirim_live_wrong", "Bearer EAAG-a-meta-token"])
def test_a_bad_key_is_190(phone_number, authorization):
    client = APIClient()
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    response = client.post(messages_url(phone_number), SEND, format="json", **headers)

    assert_meta_error(response, 401, 190)


def test_metas_refusal_passes_on_as_meta_gave_it_and_the_row_fails(api, phone_number, meta):
    meta.post(graph_messages_url(phone_number), status=400, json={"error": META_REFUSAL})

    response = api.post(messages_url(phone_number), SEND, format="json")

    assert response.status_code == 400
    assert response.json() == {"error": META_REFUSAL}
    assert Message.objects.get(direction=Direction.OUTBOUND).status == Status.FAILED


def test_meta_unreachable_is_a_transient_code_2(api, phone_number, make_message, meta):
    message = make_message(phone_number)
    meta.post(graph_messages_url(phone_number), status=502, body="<html>Bad gateway</html>")

    error = assert_meta_error(api.post(messages_url(phone_number), read_body(message.wamid), format="json"), 503, 2)

    assert error["is_transient"] is True


def test_the_rate_limit_is_80007_with_retry_after(api, phone_number, make_message, meta_accepts_reads, settings):
    settings.RATE_LIMIT_PER_MINUTE = 1
    message = make_message(phone_number)
    api.post(messages_url(phone_number), read_body(message.wamid), format="json")

    limited = api.post(messages_url(phone_number), read_body(message.wamid), format="json")

    assert_meta_error(limited, 429, 80007)
    assert 1 <= int(limited["Retry-After"]) <= 60


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


# Templates ------------------------------------------------------------------------------------------

WABA_ID = "102290129340398"
TEMPLATE = {"name": "order_shipped", "language": "en_US", "status": "APPROVED", "category": "UTILITY", "id": "9"}


@pytest.fixture
def waba(phone_number):
    phone_number.waba_id = WABA_ID
    phone_number.save(update_fields=["waba_id"])
    return phone_number


def meta_templates_url():
    return f"{settings.META_GRAPH_URL}/{WABA_ID}/message_templates"


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


# Queries: the same services as /v1/, so the same counts --------------------------------------------


def test_a_read_retry_costs_what_it_costs_on_v1(api, phone_number, make_message, meta_accepts_reads,
                                                 django_assert_num_queries):  # fmt: skip
    message = make_message(phone_number)
    api.post(messages_url(phone_number), read_body(message.wamid), format="json")

    # key + org with the rate-limit window (one statement on PostgreSQL, two on SQLite), the message
    # by wamid with its number: as receipts/tests/test_api.py counts for /v1/.
    with django_assert_num_queries(2 if connection.vendor == "postgresql" else 3):
        assert api.post(messages_url(phone_number), read_body(message.wamid), format="json").status_code == 200


def test_a_send_costs_what_it_costs_on_v1(api, phone_number, meta, django_assert_num_queries):
    wamids = iter(["wamid.V1", "wamid.GRAPH"])
    meta.add_callback(
        "POST",
        graph_messages_url(phone_number),
        lambda _: (200, {}, json.dumps({**META_SENT, "messages": [{"id": next(wamids)}]})),
    )
    v1_url = f"/v1/{phone_number.phone_number_id}/messages"
    api.get("/v1/me")  # the key's first use of the minute writes last_used_at: not part of either send
    with CaptureQueriesContext(connection) as on_v1:
        api.post(v1_url, SEND, format="json")

    with django_assert_num_queries(len(on_v1.captured_queries)):
        assert api.post(messages_url(phone_number), SEND, format="json").status_code == 200


def test_the_surface_has_its_own_openapi_document_and_docs_page(client, db):
    schema = client.get("/v1/graph/openapi.json").json()
    docs = client.get("/v1/graph/docs")

    assert set(schema["paths"]) == {
        "/{version}/{phone_number_id}/messages",
        "/{version}/{phone_number_id}/media",
        "/{version}/{phone_number_id}/block_users",
        "/{version}/{waba_id}/message_templates",
        "/{version}/{media_id}",
        "/{version}/{media_id}/content",
    }
    assert not any(path.startswith("/{version}") for path in client.get("/v1/openapi.json").json()["paths"])
    assert docs.status_code == 200 and b"graph/openapi.json" in docs.content
