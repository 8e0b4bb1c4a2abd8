"""Tenancy and access: orgs, their API keys and staff members, and the windows that count requests.

These models keep the `inbox` app label and their `inbox_*` tables (no migration moved them): they
live here so that every app can stand on them without importing the inbox."""

import hashlib
import secrets
from datetime import datetime

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
    message_content_retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Days message content (text, media references) is kept; empty: the MESSAGE_CONTENT_RETENTION_DAYS "
        "setting. Counts, ids and statuses stay.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "inbox"

    def __str__(self) -> str:
        return self.name


class Scope(models.TextChoices):
    """What an API key may do (docs/guides/api-keys.md). Any key may read its org and numbers
    (/v1/me, /v1/accounts) and rotate itself."""

    MESSAGES_READ = "messages:read", "messages:read: list and get messages"
    MESSAGES_SEND = "messages:send", "messages:send: send messages, list templates"
    MESSAGES_MARK_READ = "messages:mark_read", "messages:mark_read: read receipts and typing"
    SUBSCRIPTIONS_MANAGE = "subscriptions:manage", "subscriptions:manage: events out, their deliveries"
    CONVERSATIONS_MANAGE = (
        "conversations:manage",
        "conversations:manage: change conversations, add notes, erase a contact",
    )
    MEDIA = "media", "media: upload and download media"


ALL_SCOPES = " ".join(Scope.values)


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
    # Space-separated, as OAuth writes scopes. Every scope by default, the database's too: keys made
    # before scopes existed, or by the previous release during an upgrade, keep the access they had.
    scopes = models.CharField(max_length=200, default=ALL_SCOPES, db_default=ALL_SCOPES)

    class Meta:
        app_label = "inbox"
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.display_prefix}… ({self.name or self.external_id})"

    @staticmethod
    def digest_of(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    @classmethod
    def for_secret(cls, secret: str) -> "ApiKey | None":
        """The key with this secret, with its org, in one query on the unique digest index."""
        return KEY_WITH_ORG_BY_DIGEST.get(cls.digest_of(secret))

    @classmethod
    def issue(
        cls, *, org: Org, name: str = "", expires_at: datetime | None = None, scopes: str = ALL_SCOPES
    ) -> "tuple[ApiKey, str]":
        """Create a key; the secret is returned here once and never stored."""
        secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
        key = cls.objects.create(
            org=org,
            name=name,
            expires_at=expires_at,
            scopes=scopes,
            display_prefix=secret[: len(API_KEY_PREFIX) + 4],
            digest=cls.digest_of(secret),
        )
        return key, secret

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes.split()

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    def is_active(self, now: datetime | None = None) -> bool:
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
    # When the user last had one of the inbox's pages open (they poll): present for the round robin.
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "inbox"
        constraints = (models.UniqueConstraint(fields=("user", "org"), name="membership_unique_user_org"),)

    def __str__(self) -> str:
        return f"{self.user} in {self.org} ({self.role})"


# What every API request and every read receipt looks up, as hand-written SQL (core/db/lookups.py: why).
KEY_WITH_ORG_BY_DIGEST = JoinedRowLookup(ApiKey, "org", "digest")


class MinuteWindow(models.Model):
    """A count of something in one minute, one row per (who, minute), added to by one upsert
    (orgs.ratelimit), so every worker and host sharing the database sees the same count."""

    minute = models.BigIntegerField(help_text="Unix time // 60")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True
        app_label = "inbox"


class RateLimitWindow(MinuteWindow):
    """Requests an org made in one minute, counted once per request; `manage.py purge_expired` deletes
    old windows. Unlogged on PostgreSQL (migration 0008): a count need not survive a crash."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+")

    class Meta(MinuteWindow.Meta):
        constraints = (models.UniqueConstraint(fields=("org", "minute"), name="rate_limit_window_unique"),)


class AuthFailureWindow(MinuteWindow):
    """Failed API authentications from one client address in one minute, as added by every process in
    batches (orgs.ratelimit.AuthFailures), so the throttle holds across hosts without a write per
    failure. Unlogged on PostgreSQL (migration 0017), like RateLimitWindow."""

    address = models.CharField(max_length=64, help_text="an IPv4 address, or an IPv6 /64 network")

    class Meta(MinuteWindow.Meta):
        constraints = (models.UniqueConstraint(fields=("address", "minute"), name="auth_failure_window_unique"),)


class AuditAction(models.TextChoices):
    MARK_READ = "mark_read", "Marked read"
    REPLY = "reply", "Replied"
    NOTE = "note", "Added a note"
    ASSIGNMENT = "assignment", "Assigned a conversation"
    STATE_CHANGED = "state_changed", "Changed a conversation's state"
    LABELS_CHANGED = "labels_changed", "Changed a conversation's labels"
    KEY_CREATED = "key_created", "Created an API key"
    KEY_ROTATED = "key_rotated", "Rotated an API key"
    KEY_REVOKED = "key_revoked", "Revoked an API key"
    TOKEN_CHANGED = "token_changed", "Set a number's Meta token"
    SUBSCRIPTION_CHANGED = "subscription_changed", "Changed a webhook subscription"
    MEMBER_ADDED = "member_added", "Added a member"
    CONTACT_ERASED = "contact_erased", "Erased a contact"
    CONTACT_BLOCKED = "contact_blocked", "Blocked or unblocked a contact"


class AuditEntry(models.Model):
    """Who did what to an org, when, from where: a staff user or an API key (`actor` keeps its name as
    it was, for when the user or key is gone), or an operator's command. Written by orgs.audit; kept
    AUDIT_LOG_KEEP_DAYS (purge_expired)."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+", db_index=False)
    at = models.DateTimeField(default=timezone.now)
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    actor = models.CharField(max_length=200)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    actor_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    target = models.CharField(max_length=200, help_text="What it was done to: a public id, a number, a contact")
    detail = models.CharField(max_length=300, blank=True)
    address = models.CharField(max_length=64, blank=True, help_text="The client's address (IPv6: its /64)")

    class Meta:
        app_label = "inbox"
        verbose_name_plural = "audit log"
        ordering = ("-at", "-pk")
        indexes = (
            models.Index(fields=["org", "-at"], name="audit_org_recent"),
            models.Index(fields=["at"], name="audit_at"),  # the retention purge, and operators' list
        )

    def __str__(self) -> str:
        return f"{self.actor} {self.get_action_display().lower()} {self.target}"
