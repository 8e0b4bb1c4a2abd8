"""Secrets at rest: Meta's access tokens and subscriptions' signing secrets are stored encrypted, so a
backup, a replica or a `pg_dump` holds none of them readable.

Fernet (AES-128-CBC with HMAC-SHA256) under the keys of ENCRYPTION_KEYS: the first encrypts, every one
decrypts, so a new key is put first, `reencrypt_secrets` rewrites every row under it, and only then the
old one is dropped. A stored value is `fernet:` and the token; a value without the prefix is one written
before encryption came, read as it is until `reencrypt_secrets` rewrites it."""

from collections.abc import Iterable
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models, transaction
from django.db.models import ExpressionWrapper, F, Value
from django.dispatch import receiver

PREFIX = "fernet:"
REENCRYPT_BATCH = 200


@cache
def keys() -> list[Fernet]:
    try:
        return [Fernet(key) for key in settings.ENCRYPTION_KEYS]
    except (ValueError, TypeError) as error:
        # Fernet's message says what is wrong with a key, never the key itself.
        raise ImproperlyConfigured(f"ENCRYPTION_KEYS: {error}") from None


def keyring() -> MultiFernet:
    return MultiFernet(keys())


@receiver(setting_changed)
def forget_keys(*, setting: str, **kwargs: Any) -> None:
    if setting == "ENCRYPTION_KEYS":
        keys.cache_clear()


def encrypt(plain: str) -> str:
    return PREFIX + keyring().encrypt(plain.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        return stored  # written before encryption: re-encrypted by the next reencrypt_secrets
    try:
        return keyring().decrypt(stored.removeprefix(PREFIX).encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "A secret in the database was encrypted with a key ENCRYPTION_KEYS no longer holds: put the "
            "old key back (after the new one) and run `manage.py reencrypt_secrets` before removing it."
        ) from None


class EncryptedTextField(models.TextField):  # type: ignore[type-arg]  # generic only in the stubs; Django cannot subscript it
    """Text stored encrypted. Never a lookup: each encryption of a value differs (a random IV), so an
    equality could not match, and a prefix or range on ciphertext means nothing. The empty string
    stays empty: it is "none", not a secret."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        return value if not value else decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if not value or value.startswith(PREFIX):
            return value
        return encrypt(value)


def is_encrypted_under_first_key(stored: str) -> bool:
    if not stored.startswith(PREFIX):
        return False
    try:
        keys()[0].decrypt(stored.removeprefix(PREFIX).encode())
    except InvalidToken:
        return False
    return True


def reencrypt(model: type[models.Model], fields: Iterable[str], *, decrypted: bool = False) -> int:
    """Rewrite `fields` of every row of `model` under the first key, plain text included; rows already
    under it are left alone. `decrypted`: write them back as plain text instead (for a release before 1.0.0).
    The rows changed. Short transactions of a batch each, its rows locked while they are rewritten, so a
    secret rotated meanwhile is never written back over."""
    stored = {name: ExpressionWrapper(F(name), output_field=models.TextField()) for name in fields}  # as stored
    changed, last_pk = 0, 0
    while True:
        with transaction.atomic():
            batch = list(
                model._base_manager.filter(pk__gt=last_pk)
                .order_by("pk")
                .select_for_update()
                .annotate(**{f"stored_{name}": value for name, value in stored.items()})
                .values("pk", *[f"stored_{name}" for name in stored])[:REENCRYPT_BATCH]
            )
            for row in batch:
                values = {name: row[f"stored_{name}"] for name in stored}
                stale: dict[str, str | Value]
                if decrypted:
                    stale = {name: Value(decrypt(value)) for name, value in values.items() if value.startswith(PREFIX)}
                else:
                    stale = {
                        name: decrypt(value)  # the field encrypts it under the first key
                        for name, value in values.items()
                        if value and not is_encrypted_under_first_key(value)
                    }
                if stale:
                    model._base_manager.filter(pk=row["pk"]).update(**stale)
                    changed += 1
        if len(batch) < REENCRYPT_BATCH:
            return changed
        last_pk = batch[-1]["pk"]


@register(Tags.security, deploy=True)
def keys_set_apart(**kwargs: Any) -> list[CheckMessage]:
    if not settings.ENCRYPTION_KEYS_DERIVED:
        return []
    return [
        Warning(
            "ENCRYPTION_KEYS is not set: the secrets at rest are encrypted with keys derived from SECRET_KEY.",
            hint="Set ENCRYPTION_KEYS (docs/operations/security.md), then run `manage.py reencrypt_secrets`.",
            id="kirim.W001",
        )
    ]
