"""API key scopes, on both surfaces: a key without the scope a request needs answers 403
`insufficient_scope` on /v1/ and Meta's permission error (code 10) on /{version}/, before anything is
looked up; a key with only that scope gets through; keys made before scopes keep full access.

Surfaces without an endpoint for a scope: /v1/ has no media endpoint, Meta's surface none for reading
messages, subscriptions or erasing a contact."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from rest_framework.test import APIClient

from conftest import assert_error
from inbox.models import ALL_SCOPES, ApiKey, Scope
from testing.meta import graph_messages_url

SEND = {"messaging_product": "whatsapp", "to": "6281200000001", "type": "text", "text": {"body": "Halo"}}
READ = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.TEST000001"}
PN = "106540352242922"

# (scope, surface, method, path, body); `{pn}` is the number's id.
REQUESTS = [
    (Scope.MESSAGES_READ, "v1", "get", "/v1/{pn}/messages", None),
    (Scope.MESSAGES_READ, "v1", "get", "/v1/{pn}/messages/msg_01HXYZABCDEFGHJKMNPQRSTVWX", None),
    (Scope.MESSAGES_SEND, "v1", "post", "/v1/{pn}/messages", SEND),
    (Scope.MESSAGES_MARK_READ, "v1", "post", "/v1/{pn}/messages", READ),
    (Scope.SUBSCRIPTIONS_MANAGE, "v1", "get", "/v1/webhook_subscriptions", None),
    (Scope.SUBSCRIPTIONS_MANAGE, "v1", "post", "/v1/webhook_subscriptions", {"url": "https://hooks.example.com/k"}),
    (Scope.SUBSCRIPTIONS_MANAGE, "v1", "get", "/v1/webhook_deliveries", None),
    (Scope.CONVERSATIONS_MANAGE, "v1", "delete", "/v1/{pn}/contacts/6281200000001", None),
    (Scope.MESSAGES_SEND, "graph", "post", "/v23.0/{pn}/messages", SEND),
    (Scope.MESSAGES_SEND, "graph", "get", "/v23.0/102290129340398/message_templates", None),
    (Scope.MESSAGES_MARK_READ, "graph", "post", "/v23.0/{pn}/messages", READ),
    (Scope.MEDIA, "graph", "post", "/v23.0/{pn}/media", "upload"),
    (Scope.MEDIA, "graph", "get", "/v23.0/1234567890123456", None),
    (Scope.MEDIA, "graph", "get", "/v23.0/1234567890123456/content", None),
]
IDS = [f"{scope.value}-{surface}-{method}-{path}" for scope, surface, method, path, _ in REQUESTS]


def client_with(org, scopes):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKey.issue(org=org, scopes=scopes)[1]}")
    return client


def call(client, method, path, body, phone_number):
    path = path.format(pn=phone_number.phone_number_id)
    if body == "upload":
        upload = SimpleUploadedFile("a.jpg", b"\xff\xd8\xff\xe0jpeg", content_type="image/jpeg")
        return client.post(path, {"file": upload, "messaging_product": "whatsapp", "type": "image/jpeg"})
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, body, format="json")


@pytest.fixture
def meta_answers(meta, phone_number, make_message):
    make_message(phone_number)  # wamid.TEST000001, unread
    sent = {"messaging_product": "whatsapp", "contacts": [{"input": "6281200000001", "wa_id": "6281200000001"}],
            "messages": [{"id": "wamid.SENT"}]}  # fmt: skip
    meta.post(graph_messages_url(phone_number), json=sent)
    return meta


@pytest.mark.parametrize(("scope", "surface", "method", "path", "body"), REQUESTS, ids=IDS)
def test_a_key_without_the_scope_is_refused_before_anything_is_looked_up(
    org, phone_number, meta_answers, scope, surface, method, path, body
):
    others = " ".join(s for s in Scope.values if s != scope)
    response = call(client_with(org, others), method, path, body, phone_number)
    if surface == "v1":
        error = assert_error(response, 403, "insufficient_scope")
        assert error["type"] == "permission_error"
        assert f"`{scope}`" in error["message"]
    else:
        assert response.status_code == 403, response.content
        error = response.json()["error"]
        assert (error["code"], error["type"]) == (10, "OAuthException")
        assert scope in error["error_data"]["details"]
    assert not meta_answers.calls  # refused before Meta was asked anything


@pytest.mark.parametrize(("scope", "surface", "method", "path", "body"), REQUESTS, ids=IDS)
def test_a_key_with_only_the_scope_gets_through(org, phone_number, meta_answers, scope, surface, method, path, body):
    response = call(client_with(org, scope), method, path, body, phone_number)
    assert response.status_code != 403, response.content


def test_another_orgs_number_is_refused_alike_without_the_scope(org, foreign_number):
    """The scope is checked first: a key without it learns nothing of which numbers exist."""
    client = client_with(org, Scope.MESSAGES_SEND)
    for number in ("106540352242999", foreign_number.phone_number_id):
        assert_error(client.get(f"/v1/{number}/messages"), 403, "insufficient_scope")


def test_keys_made_before_scopes_keep_full_access(org, phone_number, meta_answers):
    # A key as the previous release inserts it: no scopes column named, the database's default applies.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO inbox_apikey (external_id, org_id, name, display_prefix, digest, created_at) "
            "VALUES (%s, %s, '', 'kirim_live_old', %s, CURRENT_TIMESTAMP)",
            ["key_01HXYZABCDEFGHJKMNPQRSTVWX", org.pk, ApiKey.digest_of("kirim_live_" + "o" * 43)],
        )
    key = ApiKey.objects.get(external_id="key_01HXYZABCDEFGHJKMNPQRSTVWX")
    assert key.scopes == ALL_SCOPES
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer kirim_live_" + "o" * 43)
    for _, _, method, path, body in REQUESTS:
        assert call(client, method, path, body, phone_number).status_code != 403, path


def test_me_shows_the_keys_scopes(org):
    client = client_with(org, "messages:read media")
    assert client.get("/v1/me").json()["data"]["api_key"]["scopes"] == ["messages:read", "media"]
