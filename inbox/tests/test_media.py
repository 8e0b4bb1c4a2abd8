"""Media on Meta's surface (inbox/services/media.py): only media the org received or uploaded is read from Meta,
only from Meta's media host, and its `url` downloads with the Kirim key or, for a few minutes, without."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from rest_framework.test import APIClient

from inbox.models import UploadedMedia
from inbox.tests.test_graph_api import assert_meta_error
from orgs.auth import media_link_signature

MEDIA_ID = "1037543291543636"
LOOKASIDE = "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1037543291543636&hash=x"
JPEG = b"\xff\xd8jp"


def described(url=LOOKASIDE, media_id=MEDIA_ID):
    return {"messaging_product": "whatsapp", "url": url, "mime_type": "image/jpeg", "id": media_id,
            "sha256": "abc", "file_size": 4}  # fmt: skip


def meta_media_url(media_id=MEDIA_ID):
    return f"{settings.META_GRAPH_URL}/{media_id}"


@pytest.fixture
def receive_media(make_message):
    """An inbound image with Meta's media id on `number`, as a webhook stores it."""

    def receive(number, media_id=MEDIA_ID):
        image = {"id": media_id, "mime_type": "image/jpeg", "sha256": "abc"}
        return make_message(number, type="image", payload={"type": "image", "image": image})

    return receive


@pytest.fixture
def received(phone_number, receive_media):
    receive_media(phone_number)
    return phone_number


@pytest.fixture
def meta_serves_media(meta):
    meta.get(meta_media_url(), json=described())
    meta.get(LOOKASIDE, body=JPEG, content_type="image/jpeg")
    return meta


def upload(api, phone_number, version="v23.0"):
    return api.post(
        f"/{version}/{phone_number.phone_number_id}/media",
        {
            "file": SimpleUploadedFile("pic.png", b"\x89PNG....", content_type="image/png"),
            "type": "image/png",
            "messaging_product": "whatsapp",
        },
        format="multipart",
    )


def path_of(url):
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def test_received_media_is_described_with_kirims_url_and_its_bytes_streamed(api, received, meta_serves_media):
    info = api.get(f"/v13.0/{MEDIA_ID}")
    content = api.get(path_of(info.json()["url"]))

    assert info.json() == {**described(), "url": info.json()["url"]}
    assert info.json()["url"].startswith(f"http://testserver/v13.0/{MEDIA_ID}/content?signature=")
    assert content.status_code == 200
    assert b"".join(content.streaming_content) == JPEG
    assert content["Content-Type"] == "image/jpeg"
    assert meta_serves_media.calls[-1].request.headers["Authorization"] == f"Bearer {received.access_token}"


def test_which_number_reads_the_media_is_one_query(api, received, meta_serves_media, django_assert_num_queries):
    api.get("/v1/me")  # the key's first use of the minute writes last_used_at: not part of this

    # key + org with the rate-limit window (one statement on PostgreSQL, two on SQLite), then the number
    # that received or uploaded the media (on the index message_media_id and uploads' unique index).
    with django_assert_num_queries(2 if connection.vendor == "postgresql" else 3):
        assert api.get(f"/v23.0/{MEDIA_ID}").status_code == 200


def test_an_upload_goes_to_meta_and_its_media_reads_back_with_the_uploading_numbers_token(
    api, phone_number, second_number, meta
):
    meta.post(f"{settings.META_GRAPH_URL}/{second_number.phone_number_id}/media", json={"id": MEDIA_ID})
    meta.get(meta_media_url(), json=described())

    response = upload(api, second_number)
    info = api.get(f"/v23.0/{MEDIA_ID}")

    assert response.json() == {"id": MEDIA_ID}
    sent = meta.calls[0].request.body
    assert b"\x89PNG" in sent and b"image/png" in sent
    assert UploadedMedia.objects.get().phone_number == second_number
    assert info.status_code == 200
    assert meta.calls[1].request.headers["Authorization"] == f"Bearer {second_number.access_token}"


def test_media_the_org_never_had_is_metas_missing_object_and_meta_is_not_asked(
    api, phone_number, foreign_number, receive_media, meta
):
    receive_media(foreign_number, "2000000000000001")  # another org's inbound media
    UploadedMedia.objects.create(org=foreign_number.org, phone_number=foreign_number, media_id="2000000000000002")
    receive_media(phone_number, "2000000000000003")
    answers = []

    for media_id in ("2000000000000001", "2000000000000002", "9999999999999999"):
        answers += [api.get(f"/v23.0/{media_id}"), api.get(f"/{media_id}/content")]
        # The org's own link for the other org's media changes nothing.
        link = media_link_signature(org=phone_number.org, media_id=media_id)
        answers.append(APIClient().get(f"/v23.0/{media_id}/content?signature={link}"))

    for answer in answers:
        assert_meta_error(answer, 400, 100, subcode=33)
    assert len(meta.calls) == 0


def test_metas_refusal_of_the_orgs_media_is_metas_own(api, received, meta):
    expired = {"message": "Error validating access token", "type": "OAuthException", "code": 190, "fbtrace_id": "T"}
    meta.get(meta_media_url(), status=401, json={"error": expired})

    response = api.get(f"/v23.0/{MEDIA_ID}")

    assert response.status_code == 401
    assert response.json() == {"error": expired}


# The media proxy: Meta's description says where the bytes are; Kirim goes there only when it is Meta's.


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://2130706433/x",  # 127.0.0.1 as a decimal
        "http://0x7f000001/x",  # and in hex
        "http://[::ffff:127.0.0.1]/x",  # IPv4-mapped
        "https://169.254.169.254/latest/meta-data/",
        "http://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1",  # not https
        "https://lookaside.fbsbx.com:8443/whatsapp_business/attachments/?mid=1",
        "https://lookaside.fbsbx.com.evil.example/x",
        "https://lookaside.fbsbx.com@evil.example/x",
        "https://user:pass@lookaside.fbsbx.com/x",
        "https://evil.example/?lookaside.fbsbx.com",
        "file:///etc/passwd",
        "",
        None,
    ],
)
def test_media_is_fetched_from_metas_media_host_only(api, received, meta, url):
    meta.get(meta_media_url(), json=described(url=url))

    response = api.get(f"/v23.0/{MEDIA_ID}/content")

    assert_meta_error(response, 503, 2)
    assert [call.request.url for call in meta.calls] == [meta_media_url()]  # the description, nothing else


def test_a_redirect_from_metas_media_host_is_not_followed(api, received, meta):
    meta.get(meta_media_url(), json=described())
    meta.get(LOOKASIDE, status=302, headers={"Location": "http://127.0.0.1:9000/steal"})

    response = api.get(f"/v23.0/{MEDIA_ID}/content")

    assert_meta_error(response, 503, 2)
    assert [call.request.url for call in meta.calls] == [meta_media_url(), LOOKASIDE]


def test_a_stand_in_at_meta_graph_url_serves_media_from_its_own_origin_only(api, received, meta, settings):
    settings.META_GRAPH_URL = "http://127.0.0.1:8081/v23.0"
    own, other_port = "http://127.0.0.1:8081/_stand_in/media/1", "http://127.0.0.1:8082/_stand_in/media/1"
    meta.get(own, body=JPEG, content_type="image/jpeg")
    meta.get(meta_media_url(), json=described(url=own))

    served = api.get(f"/v23.0/{MEDIA_ID}/content")
    meta.replace("GET", meta_media_url(), json=described(url=other_port))
    refused = api.get(f"/v23.0/{MEDIA_ID}/content")

    assert b"".join(served.streaming_content) == JPEG
    assert_meta_error(refused, 503, 2)
    assert other_port not in [call.request.url for call in meta.calls]


# Signed links: the `url` downloads without a key, for the org's media, for a few minutes.


def test_the_media_url_downloads_without_a_key(api, received, meta_serves_media):
    url = api.get(f"/v23.0/{MEDIA_ID}").json()["url"]

    content = APIClient().get(path_of(url))  # no key: as clients that send none to other hosts

    assert content.status_code == 200
    assert b"".join(content.streaming_content) == JPEG
    assert received.access_token not in url


def test_a_media_url_without_a_key_is_unversioned_too(api, received, meta_serves_media):
    url = api.get(f"/{MEDIA_ID}").json()["url"]

    assert url.startswith(f"http://testserver/{MEDIA_ID}/content?signature=")
    assert APIClient().get(path_of(url)).status_code == 200


def test_an_expired_media_link_is_refused(api, received, meta_serves_media, monkeypatch):
    made_earlier = int(time.time()) - settings.MEDIA_LINK_MAX_AGE - 1
    monkeypatch.setattr(signing.TimestampSigner, "timestamp", lambda self: signing.b62_encode(made_earlier))
    url = api.get(f"/v23.0/{MEDIA_ID}").json()["url"]

    response = APIClient().get(path_of(url))

    error = assert_meta_error(response, 401, 190, subcode=463)
    assert "expired" in error["error_data"]["details"]
    assert [call.request.url for call in meta_serves_media.calls] == [meta_media_url()]  # describing it only


def test_a_tampered_or_borrowed_media_link_is_refused(api, received, receive_media, meta_serves_media):
    receive_media(received, "2000000000000003")
    signature = parse_qs(urlsplit(api.get(f"/v23.0/{MEDIA_ID}").json()["url"]).query)["signature"][0]
    calls_before = len(meta_serves_media.calls)

    tampered = APIClient().get(f"/v23.0/{MEDIA_ID}/content", {"signature": signature[:-2] + "xx"})
    forged = APIClient().get(f"/v23.0/{MEDIA_ID}/content", {"signature": signing.dumps(["org_x", MEDIA_ID])})
    other_media = APIClient().get("/v23.0/2000000000000003/content", {"signature": signature})
    not_for_describing = APIClient().get(f"/v23.0/{MEDIA_ID}", {"signature": signature})

    for response in (tampered, forged, other_media, not_for_describing):
        assert_meta_error(response, 401, 190)
    assert len(meta_serves_media.calls) == calls_before


def test_a_media_link_counts_against_the_orgs_rate_limit(api, received, meta_serves_media, settings):
    url = api.get(f"/v23.0/{MEDIA_ID}").json()["url"]
    settings.RATE_LIMIT_PER_MINUTE = 1  # the description used it up

    assert_meta_error(APIClient().get(path_of(url)), 429, 80007)
