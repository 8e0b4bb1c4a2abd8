"""Tenancy and access: orgs, their API keys and staff members, and the windows that count requests.

These models keep the `inbox` app label and their `inbox_*` tables (no migration moved them): they
live here so that every app can stand on them without importing the inbox."""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.db.lookups import JoinedRowLookup
from core.ids import PublicIdField

API_KEY_PREFIX = "kirim_live_"


class Org(models.Model):
    external_id = PublicIdField("org")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="API requests a minute; empty: the RATE_LIMIT_PER_MINUTE setting; 0: none (every request is refused)",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "inbox"

    def __str__(self):
        return self.name


class ApiKey(models.Model):
    """Stored as a SHA-256 digest: a key has far more entropy than a password, so a slow hash buys
    nothing, and a digest lookup stays one indexed query per request."""

    secret_fields = ("digest",)  # a lookup on it would tell a key's digest, letter by letter

    external_id = PublicIdField("key")
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    display_prefix = models.CharField(max_length=24, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        app_label = "inbox"
        verbose_name = "API key"

    def __str__(self):
        return f"{self.display_prefix}… ({self.name or self.external_id})"

    @staticmethod
    def digest_of(secret):
        return hashlib.sha256(secret.encode()).hexdigest()

    @classmethod
    def for_secret(cls, secret):
        """The key with this secret, with its org, in one query on the unique digest index."""
        return KEY_WITH_ORG_BY_DIGEST.get(cls.digest_of(secret))

    @classmethod
    def issue(cls, *, org, name="", expires_at=None):
        """Create a key; the secret is returned here once and never stored."""
        secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
        key = cls.objects.create(
            org=org,
            name=name,
            expires_at=expires_at,
            display_prefix=secret[: len(API_KEY_PREFIX) + 4],
            digest=cls.digest_of(secret),
        )
        return key, secret

    def is_expired(self, now=None):
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    def is_active(self, now=None):
        return self.revoked_at is None and not self.is_expired(now)


class Role(models.TextChoices):
    AGENT = "agent"  # the inbox: conversations, messages, marking read
    MANAGER = "manager"  # also the org's numbers and API keys


# Each role is a Django group holding its permissions (migration 0009 creates them), so operators see
# and adjust what a role may do; a member is in the group of each role they hold in any org.
ROLE_GROUPS = {Role.AGENT: "Kirim agents", Role.MANAGER: "Kirim managers"}


class Membership(models.Model):
    """A staff user's place in an org. The admin shows a user only the rows of their orgs
    (orgs/scope.py); superusers are Kirim's operators and see every org."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="kirim_memberships")
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "inbox"
        constraints = (models.UniqueConstraint(fields=("user", "org"), name="membership_unique_user_org"),)

    def __str__(self):
        return f"{self.user} in {self.org} ({self.role})"


# What every API request and every read receipt looks up, as hand-written SQL (core/db/lookups.py: why).
KEY_WITH_ORG_BY_DIGEST = JoinedRowLookup(ApiKey, "org", "digest")


class RateLimitWindow(models.Model):
    """Requests an org made in one minute. Counted by one upsert per request, so the limit holds across
    every worker and host sharing the database; `manage.py purge_expired` deletes old windows.
    Unlogged on PostgreSQL (migration 0008): a count need not survive a crash."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+")
    minute = models.BigIntegerField(help_text="Unix time // 60")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        app_label = "inbox"
        constraints = (models.UniqueConstraint(fields=("org", "minute"), name="rate_limit_window_unique"),)


class AuthFailureWindow(models.Model):
    """Failed API authentications from one client address in one minute, as added by every process in
    batches (orgs.ratelimit.AuthFailures), so the throttle holds across hosts without a write per
    failure. Unlogged on PostgreSQL (migration 0017), like RateLimitWindow."""

    address = models.CharField(max_length=64, help_text="an IPv4 address, or an IPv6 /64 network")
    minute = models.BigIntegerField(help_text="Unix time // 60")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        app_label = "inbox"
        constraints = (models.UniqueConstraint(fields=("address", "minute"), name="auth_failure_window_unique"),)
