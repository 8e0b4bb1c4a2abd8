"""Schema-driven fuzzing: schemathesis generates requests from each OpenAPI document (/v1/'s and Meta's
shapes at /v1/graph/openapi.json), valid and invalid, and checks that no answer is a 500, every
answer matches the document, every valid request is accepted and every invalid one refused: the
documents and the code agree. Bounded: a fixed seed and a few dozen examples an operation."""

import json
import os
import uuid
from urllib.parse import unquote

import pytest
import schemathesis
from django.conf import settings as django_settings
from hypothesis import HealthCheck, assume, settings
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from core.surfaces import error_renderer_for
from fakemeta.server import new_wamid
from inbox.api.idempotency import HEADER as IDEMPOTENCY_KEY
from inbox.models import UploadedMedia
from kirim.wsgi import application
from testing.meta import graph_messages_url


def document(url):
    loaded = schemathesis.openapi.from_wsgi(url, application)
    # A NUL is refused anywhere (no column holds one), which a document cannot say of every string.
    loaded.config.generation.update(allow_x00=False)
    return loaded


schema = document("/v1/openapi.json")
# A fixed seed and 30 examples an operation in CI (reproducible, ~1.5 min for both documents); a deeper
# run: FUZZ_EXAMPLES=500 FUZZ_RANDOM=1, as for inbox/tests/test_fuzz.py.
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "30")),
    deadline=None,
    derandomize=not os.environ.get("FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
SUBSCRIBER_URL = "https://hooks.example.com/kirim"

pytestmark = pytest.mark.usefixtures("connections_kept_open")  # requests go through the WSGI application


def made_real(case, path_values, wamid, key_headers):
    """Make true of `case` what a document cannot say, in each part generated as valid (a part
    generated as invalid stays as it is, or the request would no longer be invalid): the caller's own
    ids in the path, and a read receipt for one of its messages (Meta's 131009 for another is a 400);
    no cursor (signed by Kirim: a generated one is refused, by design); a subscriber URL whose host
    DNS answers with a public address; an Idempotency-Key of its own, as a client sends one per
    request (the same key with another body is a 422, by design). Returns the headers to send: the
    caller's key, unless the headers were generated as invalid (the key may be what they lack)."""
    components = case.meta.components if case.meta else {}

    def valid(location):
        info = components.get(location)
        return info is None or info.mode.is_positive

    if valid(ParameterLocation.PATH):
        for name in set(path_values) & set(case.path_parameters or {}):
            case.path_parameters[name] = path_values[name]
    if valid(ParameterLocation.QUERY) and case.query:
        case.query.pop("cursor", None)
    if valid(ParameterLocation.BODY) and isinstance(case.body, dict):
        for name, value in (("url", SUBSCRIBER_URL), ("message_id", wamid)):
            if name in case.body:
                case.body[name] = value
    if not valid(ParameterLocation.HEADER):
        return {}  # the key may be what was left out: no key
    if IDEMPOTENCY_KEY in (case.headers or {}):
        case.headers[IDEMPOTENCY_KEY] = str(uuid.uuid4())
    return key_headers


def meta_answer(request):
    body = json.loads(request.body)
    if body.get("status") == "read":
        return 200, {}, '{"success": true}'
    return 200, {}, json.dumps({"messaging_product": "whatsapp", "messages": [{"id": new_wamid()}]})


@pytest.fixture
def inbox(api_key_secret, phone_number, make_message, meta, settings, monkeypatch):
    # schemathesis sends many bad keys per test: each must be the 401 it checks for, not the throttle's
    # 429 (orgs/tests/test_auth_failures.py tests that).
    settings.AUTH_FAILURES_PER_MINUTE = 1_000_000
    meta.add_callback("POST", graph_messages_url(phone_number), callback=meta_answer)
    block_users = f"{django_settings.META_GRAPH_URL}/{phone_number.phone_number_id}/block_users"
    done = {"input": "6281", "wa_id": "6281"}
    meta.post(block_users, json={"messaging_product": "whatsapp", "block_users": {"added_users": [done]}})
    meta.delete(block_users, json={"messaging_product": "whatsapp", "block_users": {"removed_users": [done]}})
    meta.get(block_users, json={"data": [{"messaging_product": "whatsapp", "wa_id": "6281"}], "paging": {}})
    monkeypatch.setattr("outbox.subscriber_http.resolve", lambda host, port: {"93.184.215.14"})
    messages = [make_message(phone_number) for _ in range(3)]
    return {"Authorization": f"Bearer {api_key_secret}"}, phone_number, messages[-1].wamid


@schema.parametrize()
@FUZZ
def test_api_and_its_document_agree(case, inbox):
    headers, phone_number, wamid = inbox
    case.call_and_validate(headers=made_real(case, {"phone_number_id": phone_number.phone_number_id}, wamid, headers))


# Meta's own API at Kirim (/{version}/...) has its own document, fuzzed the same way.
graph_schema = document("/v1/graph/openapi.json")
WABA_ID, MEDIA_ID = "102290129340398", "1037543291543636"
LOOKASIDE = "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1"


@pytest.fixture
def graph_inbox(inbox, meta):
    headers, phone_number, wamid = inbox
    phone_number.waba_id = WABA_ID
    phone_number.save(update_fields=["waba_id"])
    graph = django_settings.META_GRAPH_URL
    meta.get(f"{graph}/{WABA_ID}/message_templates", json={"data": [{"name": "hello"}], "paging": {"cursors": {}}})
    meta.get(f"{graph}/{MEDIA_ID}", json={"id": MEDIA_ID, "url": LOOKASIDE, "mime_type": "image/jpeg"})
    meta.get(LOOKASIDE, body=b"\xff\xd8", content_type="image/jpeg")
    meta.post(f"{graph}/{phone_number.phone_number_id}/media", json={"id": MEDIA_ID})
    UploadedMedia.objects.create(org=phone_number.org, phone_number=phone_number, media_id=MEDIA_ID)
    return headers, phone_number, wamid


@graph_schema.parametrize()
@FUZZ
def test_metas_shapes_and_their_document_agree(case, graph_inbox):
    headers, phone_number, wamid = graph_inbox
    real = {"version": "v23.0", "phone_number_id": phone_number.phone_number_id, "waba_id": WABA_ID,
            "media_id": MEDIA_ID}  # fmt: skip
    headers = made_real(case, real, wamid, headers)
    # A version generated as invalid may take the request off Meta's surface (`/%C2%84/0000`: neither a
    # version, nor what reads as one, nor a Graph id first): a page for people, no operation of this one.
    assume(error_renderer_for(unquote(case.formatted_path)) is not None)
    case.call_and_validate(headers=headers)


def operations_taking_bodies():
    operations = (result.ok() for result in schema.get_all_operations())
    return [operation for operation in operations if operation.get_request_payload_content_types()]


@pytest.mark.parametrize(
    "refusal",
    [
        {"headers": {}, "status": 413},  # with API_MAX_BODY_BYTES lowered below the body's size
        {"headers": {"Content-Type": "application/json; charset=rot13"}, "status": 415},
    ],
    ids=["too-large", "charset"],
)
def test_bodies_refused_at_the_gate_match_the_schema(inbox, settings, refusal):
    headers, phone_number, _ = inbox
    settings.API_MAX_BODY_BYTES = 100 if refusal["status"] == 413 else 1024 * 1024
    operations = operations_taking_bodies()
    assert operations
    for operation in operations:
        case = operation.Case(
            path_parameters={  # the gate answers before any URL is resolved: any value will do
                parameter.name: phone_number.phone_number_id
                for parameter in operation.iter_parameters()
                if parameter.location == "path"
            },
            body={"messaging_product": "whatsapp", "padding": "x" * 200},
            media_type="application/json",
        )
        response = case.call_and_validate(
            headers={**headers, **refusal["headers"]},
            excluded_checks=[positive_data_acceptance, negative_data_rejection],
        )
        assert response.status_code == refusal["status"]
