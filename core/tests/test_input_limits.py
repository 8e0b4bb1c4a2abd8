"""Bad input under /v1/ and /webhooks/ is refused in the contract's envelope before it can do harm:
bodies over the size limit (413, before parsing, chunked ones too), charsets other than UTF-8 (415),
JSON nested too deep, non-finite numbers and lone surrogates (400 naming the field)."""

import io
import json

import pytest
from django.test import Client

from conftest import assert_error
from inbox.models import Message


def send_url(phone_number):
    return f"/v1/{phone_number.phone_number_id}/messages"


def text_send(body="Halo", **extra):
    return {"messaging_product": "whatsapp", "to": "6281234567801", "type": "text", "text": {"body": body}, **extra}


def post_raw(api, url, raw, content_type="application/json"):
    return api.generic("POST", url, raw, content_type=content_type)


@pytest.mark.parametrize("charset", ["rot13", "zlib", "bz2", "base64", "utf-16", "latin-1", "no-such-charset"])
def test_a_charset_other_than_utf8_is_415(api, phone_number, charset):
    response = post_raw(api, send_url(phone_number), json.dumps(text_send()), f"application/json; charset={charset}")

    assert_error(response, 415, "unsupported_media_type")
    assert not Message.objects.exists()


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8"])
def test_utf8_named_any_way_is_accepted(api, phone_number, charset, meta):
    response = post_raw(api, send_url(phone_number), json.dumps(text_send()), f"application/json; charset={charset}")

    assert response.status_code != 415


def test_bytes_that_are_not_utf8_are_invalid_json(api, phone_number):
    raw = json.dumps(text_send("Halo")).encode().replace(b"Halo", b"Hal\xff")

    assert_error(post_raw(api, send_url(phone_number), raw), 400, "invalid_json")


@pytest.mark.parametrize("depth", [65, 950, 5000, 100_000])
def test_json_nested_too_deep_is_invalid_json(api, phone_number, depth):
    raw = json.dumps(text_send()).replace('"Halo"', '"Halo", "extra": ' + "[" * depth + "]" * depth)

    assert_error(post_raw(api, send_url(phone_number), raw), 400, "invalid_json")
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("raw_value", "param"),
    [
        ("1e999", "text.body"),
        ("-1e999", "text.body"),
        ("NaN", "text.body"),
        ("Infinity", "text.body"),
        ('"\\ud800"', "text.body"),
        ('"ok \\udfff"', "text.body"),
    ],
)
def test_unstorable_values_in_free_form_fields_are_400_naming_the_field(api, phone_number, raw_value, param):
    raw = json.dumps(text_send()).replace('"Halo"', raw_value)

    assert_error(post_raw(api, send_url(phone_number), raw), 400, "invalid_field_value", param)
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("fragment", "param"),
    [
        ('"template": {"name": "x", "components": [{"parameters": [{"text": 1e999}]}]}', "template.components.0.parameters.0.text"),
        ('"biz_opaque_callback_data": "\\ud83d"', "biz_opaque_callback_data"),
        ('"unknown": {"deep": [NaN]}', "unknown.deep.0"),
        ('"\\ud800": 1', "body"),
    ],
)  # fmt: skip
def test_unstorable_values_anywhere_in_the_body_are_400(api, phone_number, fragment, param):
    raw = json.dumps(text_send())[:-1] + ", " + fragment + "}"

    assert_error(post_raw(api, send_url(phone_number), raw), 400, "invalid_field_value", param)
    assert not Message.objects.exists()


def test_a_body_over_the_limit_is_413_before_it_is_parsed(api, phone_number, settings, monkeypatch):
    settings.API_MAX_BODY_BYTES = 1000
    monkeypatch.setattr("core.parsers.StrictJSONParser.parse", lambda *a, **k: pytest.fail("parsed"))
    raw = json.dumps(text_send("x" * 1000))

    error = assert_error(post_raw(api, send_url(phone_number), raw), 413, "request_too_large")

    assert "1000 bytes" in error["message"]


def test_the_default_api_limit_is_one_megabyte(api, phone_number, meta):
    padding = "x" * (1024 * 1024)

    response = post_raw(api, send_url(phone_number), json.dumps(text_send(unknown_field=padding)))

    assert_error(response, 413, "request_too_large")
    assert not Message.objects.exists()


def chunked_post(client, url, raw, **headers):
    """A chunked request as gunicorn hands it over: no Content-Length, and an input stream that ends
    where the body does (wsgi.input_terminated)."""
    return client.generic(
        "POST",
        url,
        content_type="application/json",
        **{"wsgi.input": io.BytesIO(raw), "wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
        **headers,
    )


def test_a_chunked_body_over_the_limit_is_413(api, phone_number, settings):
    settings.API_MAX_BODY_BYTES = 1000

    response = chunked_post(api, send_url(phone_number), json.dumps(text_send("x" * 2000)).encode())

    assert_error(response, 413, "request_too_large")


def test_a_chunked_body_under_the_limit_is_read_whole(api, phone_number):
    response = chunked_post(api, send_url(phone_number), json.dumps(text_send("")).encode())

    assert_error(response, 400, "invalid_field_value", "text.body")  # the body was read: its text is empty


def test_a_webhook_over_its_limit_is_413_and_not_stored(db, settings):
    from inbox.models import WebhookEvent

    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    response = Client().post("/webhooks/whatsapp", "x" * 1001, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert not WebhookEvent.objects.exists()


def test_the_webhook_limit_fits_metas_largest_payload(settings):
    assert settings.WEBHOOK_MAX_BODY_BYTES >= 3 * 1024 * 1024
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE >= settings.WEBHOOK_MAX_BODY_BYTES


@pytest.mark.parametrize("version", ["/v23.0", ""], ids=["versioned", "unversioned"])
def test_metas_surface_gets_the_same_limits_in_metas_shape(api, phone_number, settings, version):
    settings.API_MAX_BODY_BYTES = 1000
    url = f"{version}/{phone_number.phone_number_id}/messages"

    too_large = post_raw(api, url, json.dumps(text_send("x" * 1000)))
    charset = post_raw(api, url, json.dumps(text_send()), "application/json; charset=rot13")
    surrogate = post_raw(api, url, json.dumps(text_send()).replace('"Halo"', '"\\ud800"'))

    assert too_large.status_code == 413
    assert (
        too_large.json()["error"]["code"] == 100 and "1000 bytes" in too_large.json()["error"]["error_data"]["details"]
    )
    assert charset.json()["error"]["code"] == 100 and "rot13" in charset.json()["error"]["error_data"]["details"]
    assert (
        surrogate.json()["error"]["code"] == 100 and "text.body" in surrogate.json()["error"]["error_data"]["details"]
    )


@pytest.mark.parametrize("version", ["/v23.0", ""], ids=["versioned", "unversioned"])
def test_a_media_upload_has_metas_media_limit_not_the_apis(api, phone_number, settings, meta, version):
    settings.API_MAX_BODY_BYTES = 1000
    settings.MEDIA_MAX_BODY_BYTES = 5000
    url = f"{version}/{phone_number.phone_number_id}/media"

    def upload(size):
        return api.post(url, {"file": io.BytesIO(b"\xff" * size), "type": "image/jpeg"}, format="multipart")

    assert upload(4000).status_code != 413  # past the gate (and to a Meta that answers nothing)
    assert upload(6000).status_code == 413


@pytest.mark.parametrize(
    "raw",
    [
        b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": 1e999}]}]}',
        b'{"object": "whatsapp_business_account", "entry": [NaN, Infinity, "\\ud800"]}',
        b'{"entry": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"entry": "\xff\xfe"}',
    ],
    ids=["1e999", "nan-and-surrogate", "nested-5000", "not-utf8"],
)
def test_a_signed_webhook_that_cannot_be_parsed_is_never_a_500(db, settings, raw):
    from fakemeta import payloads

    response = Client().post(
        "/webhooks/whatsapp", raw, content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=payloads.sign(raw, settings.META_APP_SECRET),
    )  # fmt: skip

    assert response.status_code == 200


def test_a_url_or_headers_past_the_limits_are_refused_in_the_surfaces_envelope(api, phone_number):
    """Limits gunicorn enforced with HTML pages (414, 431), answered by Kirim (gunicorn's own are set
    above them: kirim/tests/test_production.py drives both through gunicorn)."""
    long_query = "?contact=" + "6" * 4100
    assert_error(api.get(send_url(phone_number) + long_query), 414, "uri_too_long")
    many = {f"HTTP_X_EXTRA_{n}": "1" for n in range(101)}
    assert_error(api.get(send_url(phone_number), **many), 431, "request_headers_too_large")
    assert_error(api.get(send_url(phone_number), HTTP_X_BIG="x" * 8190), 431, "request_headers_too_large")
    assert api.get(send_url(phone_number), HTTP_X_BIG="x" * 8000).status_code == 200

    graph = api.get(f"/v23.0/{phone_number.phone_number_id}/messages{long_query}")
    assert (graph.status_code, graph.json()["error"]["code"]) == (414, 100)


def test_a_nul_in_the_url_is_400_in_the_envelope(api, phone_number):
    """PostgreSQL refuses a NUL in a query, and no column holds one."""
    assert_error(api.get(send_url(phone_number) + "?contact=62%00"), 400, "invalid_field_value")
