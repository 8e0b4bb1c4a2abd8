"""401s per the contract: missing, malformed, unknown, revoked and expired keys."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from inbox.models import ApiKey

RECEIPT = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"}


def post_with(authorization, phone_number):
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    return client.post(f"/v1/{phone_number.phone_number_id}/messages", RECEIPT, format="json")


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic a2lyaW06cGFzcw==", "Bearer not-a-kirim-key", "Bearer kirim_live_unknown000000000"],
    ids=["missing", "empty", "no-key", "basic", "malformed", "unknown"],
)
def test_bad_keys_are_401_invalid_api_key(phone_number, authorization):
    response = post_with(authorization, phone_number)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert response.json()["error"]["type"] == "authentication_error"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_revoked_key_is_401_invalid_api_key(org, phone_number):
    key, secret = ApiKey.issue(org=org)
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())

    assert post_with(f"Bearer {secret}", phone_number).json()["error"]["code"] == "invalid_api_key"


def test_expired_key_is_401_expired_api_key(org, phone_number):
    _, secret = ApiKey.issue(org=org, expires_at=timezone.now() - timedelta(seconds=1))

    response = post_with(f"Bearer {secret}", phone_number)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "expired_api_key"


def test_key_not_yet_expired_works(org, phone_number):
    _, secret = ApiKey.issue(org=org, expires_at=timezone.now() + timedelta(days=1))

    assert post_with(f"Bearer {secret}", phone_number).json()["error"]["code"] == "resource_not_found"


def test_key_is_stored_only_as_a_digest_and_a_short_prefix(org):
    key, secret = ApiKey.issue(org=org)

    assert secret.startswith("kirim_live_") and len(secret) >= len("kirim_live_") + 32
    stored = ApiKey.objects.values().get(pk=key.pk)
    assert secret not in str(stored)
    assert stored["digest"] == ApiKey.digest_of(secret)
    assert secret.startswith(stored["display_prefix"]) and len(stored["display_prefix"]) < 20


def test_last_used_is_recorded(org, phone_number):
    key, secret = ApiKey.issue(org=org)

    post_with(f"Bearer {secret}", phone_number)

    key.refresh_from_db()
    assert key.last_used_at is not None
