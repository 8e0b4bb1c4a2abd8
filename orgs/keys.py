"""API keys rotated without downtime: a new key with the old one's org, name, scopes and expiry, and the
old one kept valid for a grace period while clients switch, then expired (401 `expired_api_key`)."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import InvalidField
from orgs.models import ApiKey

MAX_GRACE = timedelta(days=30)


def api_key_rotate(*, key: ApiKey, grace: timedelta | None = None) -> tuple[ApiKey, str]:
    """The new key and its secret (returned here once). The old key expires after `grace`
    (API_KEY_ROTATION_GRACE_HOURS when None), or sooner when it was to expire sooner already."""
    if grace is None:
        grace = timedelta(hours=settings.API_KEY_ROTATION_GRACE_HOURS)
    if not timedelta(0) <= grace <= MAX_GRACE:
        raise InvalidField("grace_period_hours", f"The grace period is 0 to {MAX_GRACE.days * 24} hours.")
    if not key.is_active():
        raise InvalidField("key", "This key is revoked or expired already: create a new one instead.")
    ends = timezone.now() + grace
    with transaction.atomic():
        new_key, secret = ApiKey.issue(org=key.org, name=key.name, expires_at=key.expires_at, scopes=key.scopes)
        ApiKey.objects.filter(pk=key.pk).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=ends)).update(
            expires_at=ends
        )
    key.refresh_from_db(fields=["expires_at"])
    return new_key, secret
