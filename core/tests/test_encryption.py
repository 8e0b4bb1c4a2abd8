"""Secrets at rest: stored encrypted, read back, and moved to a new key without a moment when a
number or a subscription cannot be used."""

import base64

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.db.models import Value

from inbox.models import PhoneNumber
from outbox.models import WebhookSubscription

OLD_KEY, NEW_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def stored(model, pk, column):
    """The column as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {model._meta.db_table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def token_of(phone_number):
    return PhoneNumber.objects.get(pk=phone_number.pk).access_token


@pytest.fixture
def old_key(settings):
    settings.ENCRYPTION_KEYS = [OLD_KEY]


def test_tokens_and_secrets_are_stored_encrypted_and_read_back(old_key, phone_number, org):
    subscription = WebhookSubscription.objects.create(org=org, url="https://example.com/hook", events=[])
    subscription.previous_secret = "whsec_previous"
    subscription.save()
    raw = stored(PhoneNumber, phone_number.pk, "access_token")
    assert raw.startswith("fernet:")
    assert "EAAG-secret-token" not in raw
    assert Fernet(OLD_KEY).decrypt(raw.removeprefix("fernet:").encode()).decode() == phone_number.access_token
    for column in ("secret", "previous_secret"):
        assert stored(WebhookSubscription, subscription.pk, column).startswith("fernet:")
    again = WebhookSubscription.objects.get(pk=subscription.pk)
    assert (again.secret, again.previous_secret) == (subscription.secret, "whsec_previous")
    assert again.secret.startswith("whsec_")


def test_a_new_key_first_old_rows_still_read_until_reencrypted_then_the_old_key_goes(
    old_key, settings, phone_number, org, capsys
):
    subscription = WebhookSubscription.objects.create(org=org, url="https://example.com/hook", events=[])
    settings.ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    assert token_of(phone_number) == phone_number.access_token  # the old key still decrypts
    settings.ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(ImproperlyConfigured, match="reencrypt_secrets"):  # the message names no secret
        token_of(phone_number)

    settings.ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    call_command("reencrypt_secrets")
    assert "1 phone numbers and 1 subscriptions" in capsys.readouterr().out
    settings.ENCRYPTION_KEYS = [NEW_KEY]
    assert token_of(phone_number) == phone_number.access_token
    assert WebhookSubscription.objects.get(pk=subscription.pk).secret == subscription.secret
    raw = stored(PhoneNumber, phone_number.pk, "access_token")
    assert Fernet(NEW_KEY).decrypt(raw.removeprefix("fernet:").encode()).decode() == phone_number.access_token

    call_command("reencrypt_secrets")  # all under the first key already: nothing to do
    assert "0 phone numbers and 0 subscriptions" in capsys.readouterr().out


def test_secrets_the_previous_release_wrote_are_read_then_encrypted_in_place_and_written_back_plain(
    old_key, phone_number, org
):
    # Rows as the previous release wrote them, which the migrations leave alone: plain text.
    subscription = WebhookSubscription.objects.create(
        org=org, url="https://example.com/hook", events=["message.status"]
    )
    PhoneNumber.objects.filter(pk=phone_number.pk).update(access_token=Value(phone_number.access_token))
    WebhookSubscription.objects.filter(pk=subscription.pk).update(secret=Value(subscription.secret))
    assert stored(PhoneNumber, phone_number.pk, "access_token") == phone_number.access_token
    assert token_of(phone_number) == phone_number.access_token  # this release reads them as they are
    assert WebhookSubscription.objects.get(pk=subscription.pk).secret == subscription.secret

    call_command("reencrypt_secrets")  # the upgrade's contract step, once every host runs this release
    assert stored(PhoneNumber, phone_number.pk, "access_token").startswith("fernet:")
    assert stored(WebhookSubscription, subscription.pk, "secret").startswith("fernet:")
    assert token_of(phone_number) == phone_number.access_token

    call_command("reencrypt_secrets", "--plain")  # before rolling back to the previous release
    assert stored(PhoneNumber, phone_number.pk, "access_token") == phone_number.access_token
    assert stored(WebhookSubscription, subscription.pk, "secret") == subscription.secret


def test_a_malformed_key_is_named_without_its_value(settings, phone_number):
    settings.ENCRYPTION_KEYS = [base64.urlsafe_b64encode(b"too short").decode()]
    with pytest.raises(ImproperlyConfigured) as raised:
        token_of(phone_number)
    assert "ENCRYPTION_KEYS" in str(raised.value)
    assert settings.ENCRYPTION_KEYS[0] not in str(raised.value)
