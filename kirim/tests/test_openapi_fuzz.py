"""Schema-driven fuzzing: schemathesis generates requests from /v1/openapi.json and checks that no
answer is a 500 and every answer matches the schema (status codes, content type, body shape)."""

import json

import pytest
import schemathesis
from django.conf import settings as django_settings
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from conftest import graph_messages_url
from fakemeta.server import new_wamid
from inbox.models import UploadedMedia
from kirim.wsgi import application

schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", application)

pytestmark = pytest.mark.usefixtures("connections_kept_open")  # requests go through the WSGI application


def meta_answer(request):
    body = json.loads(request.body)
    if body.get("status") == "read":
        return 200, {}, '{"success": true}'
    return 200, {}, json.dumps({"messaging_product": "whatsapp", "messages": [{"id": new_wamid()}]})


@pytest.fixture
def inbox(api_key_secret, phone_number, make_message, meta, settings):
    # schemathesis sends many bad keys per test: each must be the 401 it checks for, not the throttle's
    # 429 (kirim/tests/test_auth_failures.py tests that).
    settings.AUTH_FAILURES_PER_MINUTE = 1_000_000
    meta.add_callback("POST", graph_messages_url(phone_number), callback=meta_answer)
    for _ in range(3):
        make_message(phone_number)
    return {"Authorization": f"Bearer {api_key_secret}"}, phone_number


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same examples every run: CI stays reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_matches_its_schema_and_never_500s(case, inbox):
    headers, phone_number = inbox
    if "phone_number_id" in (case.path_parameters or {}):
        case.path_parameters["phone_number_id"] = phone_number.phone_number_id
    # Two checks are left out. A schema-valid request may still be refused for what a schema cannot say
    # (an unsigned cursor, a wamid that does not exist). And a generated "invalid" request is made valid
    # above (real key, real number), while unknown query parameters are ignored by design. 500s,
    # undocumented status codes and responses that break the schema are all still caught.
    case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance, negative_data_rejection])


# Meta's own API at Kirim (/{version}/...) has its own document, fuzzed the same way.
graph_schema = schemathesis.openapi.from_wsgi("/v1/graph/openapi.json", application)
WABA_ID, MEDIA_ID = "102290129340398", "1037543291543636"
LOOKASIDE = "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1"


@pytest.fixture
def graph_inbox(inbox, meta):
    headers, phone_number = inbox
    phone_number.waba_id = WABA_ID
    phone_number.save(update_fields=["waba_id"])
    graph = django_settings.META_GRAPH_URL
    meta.get(f"{graph}/{WABA_ID}/message_templates", json={"data": [{"name": "hello"}], "paging": {"cursors": {}}})
    meta.get(f"{graph}/{MEDIA_ID}", json={"id": MEDIA_ID, "url": LOOKASIDE, "mime_type": "image/jpeg"})
    meta.get(LOOKASIDE, body=b"\xff\xd8", content_type="image/jpeg")
    meta.post(f"{graph}/{phone_number.phone_number_id}/media", json={"id": MEDIA_ID})
    UploadedMedia.objects.create(org=phone_number.org, phone_number=phone_number, media_id=MEDIA_ID)
    return headers, phone_number


@graph_schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_metas_shapes_match_their_schema_and_never_500(case, graph_inbox):
    headers, phone_number = graph_inbox
    real = {
        "version": "v23.0",
        "phone_number_id": phone_number.phone_number_id,
        "waba_id": WABA_ID,
        "media_id": MEDIA_ID,
    }
    for name in set(real) & set(case.path_parameters or {}):
        case.path_parameters[name] = real[name]
    case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance, negative_data_rejection])


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
    headers, phone_number = inbox
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
