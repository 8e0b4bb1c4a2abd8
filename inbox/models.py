"""Kirim's data: orgs, their WhatsApp numbers and API keys, and every message in and out."""

import hashlib
import re
import secrets
import uuid
from datetime import timedelta
from functools import reduce
from operator import or_

from django.conf import settings
from django.db import models
from django.db.models import OuterRef, Q
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.utils import timezone

from kirim.ids import PublicIdField
from kirim.lookups import JoinedRowLookup

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

    def __str__(self):
        return self.name


class ReadReceiptPolicy(models.TextChoices):
    """When the admin inbox tells a contact their messages were read."""

    MANUAL = "manual", "Manual: staff click Mark read"
    ON_OPEN = "on_open", "On open: opening the thread reads the conversation"
    ON_REPLY = "on_reply", "On reply: sending a reply first reads the conversation"


class PhoneNumber(models.Model):
    """A business number connected to Meta. `access_token` is a secret: it is only ever sent to Meta."""

    secret_fields = ("access_token",)  # write-only in the admin, never a lookup (inbox/admin_scope.py)

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="phone_numbers")
    phone_number_id = models.CharField(max_length=20, unique=True, help_text="Meta's id, digits only")
    display_phone_number = models.CharField(max_length=32)
    waba_id = models.CharField("WABA id", max_length=32, blank=True)
    access_token = models.TextField()
    read_receipt_policy = models.CharField(
        max_length=16, choices=ReadReceiptPolicy.choices, default=ReadReceiptPolicy.MANUAL
    )
    typing_indicator = models.BooleanField(
        default=False,
        help_text="Show the contact a typing bubble while an agent writes a reply in the admin. Meta sends it "
        "with a read receipt, so it also marks the conversation read; show it only when a reply follows.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("display_phone_number",)

    def __str__(self):
        return self.display_phone_number


class ApiKey(models.Model):
    """Stored as a SHA-256 digest: a key has far more entropy than a password, so a slow hash buys
    nothing, and a digest lookup stays one indexed query per request."""

    secret_fields = ("digest",)  # a lookup on it would tell a key's digest, letter by letter
    # Set by inbox.ratelimit when the key authenticates: (minute, the org's count after this request).
    window: tuple[int, int] | None = None

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
    (inbox/admin_scope.py); superusers are Kirim's operators and see every org."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="kirim_memberships")
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = (models.UniqueConstraint(fields=("user", "org"), name="membership_unique_user_org"),)

    def __str__(self):
        return f"{self.user} in {self.org} ({self.role})"


class Direction(models.TextChoices):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Status(models.TextChoices):
    RECEIVED = "received"  # inbound, not yet read
    PENDING = "pending"  # outbound, stored, its call to Meta not yet answered
    UNCONFIRMED = "unconfirmed"  # outbound, Meta may have it but its answer was lost; a status webhook settles it
    ACCEPTED = "accepted"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"  # a voice message played (blue microphone); it was read first
    FAILED = "failed"


class ReadVia(models.TextChoices):
    API = "api"
    ADMIN = "admin"
    BATCH = "batch"
    EXPIRED_LOCALLY = "expired_locally", "Batch, past the receipt window (no receipt sent)"


def of_conversations(keys):
    """A filter for the messages or conversation rows of the conversations that `keys` names,
    (phone_number_id, contact_wa_id) pairs; it matches nothing for no keys."""
    return reduce(or_, (Q(phone_number_id=p, contact_wa_id=c) for p, c in keys), Q(pk__in=[]))


class MessageQuerySet(models.QuerySet):
    def unread_inbound(self):
        return self.filter(direction=Direction.INBOUND, status=Status.RECEIVED)

    def conversation(self, phone_number_id, contact_wa_id):
        return self.filter(phone_number_id=phone_number_id, contact_wa_id=contact_wa_id)

    def unread_of_outer_conversation(self):
        """Unread inbound messages of the conversation row of an outer query, for correlated
        subqueries over conversations (served by the partial index message_unread_inbound)."""
        return self.unread_inbound().filter(
            phone_number_id=OuterRef("phone_number_id"), contact_wa_id=OuterRef("contact_wa_id")
        )

    def lock_in_pk_order(self, *fields):
        """Lock the rows with SELECT ... FOR UPDATE in primary-key order; return `fields` of each.

        Every path that locks messages goes through here: two transactions locking overlapping rows
        in different orders deadlock, and primary-key order is the one order all of them share."""
        return list(self.select_for_update(of=("self",)).order_by("pk").values_list(*fields))

    def claim_unread(self, pk, *, lease):
        """Claim unread message `pk` for its read receipt: one conditional UPDATE, which only one of
        any number of concurrent requests can win. Its token, or None when the message is read or
        another request holds a live claim. Hosts' clocks must agree to well within `lease` seconds."""
        now = timezone.now()
        token = uuid.uuid4()
        claimed = (
            self.filter(pk=pk, status=Status.RECEIVED)
            .filter(Q(claim_expires_at__isnull=True) | Q(claim_expires_at__lte=now))
            .update(claim_token=token, claim_expires_at=now + timedelta(seconds=lease))
        )
        return token if claimed else None

    def release_claim(self, pk, token):
        """Give up our claim on message `pk` (its call failed); a claim taken over since is left alone."""
        self.filter(pk=pk, claim_token=token).update(claim_token=None, claim_expires_at=None)


# A conversation's key: the contact's phone number (wa_id) when Meta first gave one, else its
# business-scoped user id; for a group, the group's id. It stays when the user adopts a username or
# changes number: later messages find the conversation by its business-scoped user id.
CONTACT_KEY_LENGTH = 128
CONTACT_KEY_HELP = "Phone number (wa_id) or business-scoped user id of the contact, or the group's id"


class Conversation(models.Model):
    """One contact's thread on one number: the inbox's rows. Keeps only what changes when a message
    arrives or is sent (last activity, preview, name), so reads never write here; unread counts come
    from the partial index on messages, for the conversations on screen only."""

    # Their own indexes would repeat the leading column of conversation_org_recent and of the unique
    # contact constraint: every new message updates its conversation's row, and with it each index.
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+", db_index=False)
    phone_number = models.ForeignKey(
        PhoneNumber, on_delete=models.CASCADE, related_name="conversations", db_index=False
    )
    contact_wa_id = models.CharField("contact", max_length=CONTACT_KEY_LENGTH, help_text=CONTACT_KEY_HELP)
    contact_user_id = models.CharField(
        "business-scoped user id", max_length=64, blank=True, help_text="The contact's latest id from Meta (BSUID)"
    )
    contact_name = models.CharField(max_length=200, blank=True)
    last_message_at = models.DateTimeField("last activity")
    last_message_text = models.CharField("last message", max_length=200, blank=True)
    last_direction = models.CharField(max_length=8, choices=Direction.choices)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=("phone_number", "contact_wa_id"), name="conversation_unique_contact"),
        )
        indexes = (
            models.Index(fields=["-last_message_at", "-id"], name="conversation_recent"),
            models.Index(fields=["phone_number", "-last_message_at"], name="conversation_number_recent"),
            models.Index(fields=["org", "-last_message_at"], name="conversation_org_recent"),
            # Webhooks find a contact's conversation by its business-scoped id when the number is gone.
            models.Index(
                fields=["phone_number", "contact_user_id"],
                condition=~Q(contact_user_id=""),
                name="conversation_user_id",
            ),
        )
        permissions = (
            ("mark_read", "Can mark inbound messages read on WhatsApp"),
            ("reply", "Can reply to contacts on WhatsApp"),
        )

    def __str__(self):
        return f"{self.contact_name or self.contact_wa_id} on {self.phone_number_id}"

    def messages(self):
        return Message.objects.conversation(self.phone_number_id, self.contact_wa_id)

    @property
    def contact_shown(self):
        """The contact's key as people read it: +number, or a business-scoped user id or group id."""
        key = self.contact_wa_id
        return f"+{key}" if key.isdigit() else key


# Messages that carry media, under their type's key: `{"type": "image", "image": {"id": ...}}`.
MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
# Meta's media id in a message's payload (NULL in others), as the index message_media_id has it: a
# query must filter on this very expression, and on the index's condition (MEDIA_MESSAGES), to use it.
MEDIA_ID_IN_PAYLOAD = Coalesce(*(KT(f"payload__{kind}__id") for kind in MEDIA_TYPES))
MEDIA_MESSAGES = Q(direction="inbound", type__in=MEDIA_TYPES)


class Message(models.Model):
    external_id = PublicIdField("msg")
    # Indexed by the Meta.indexes that lead with them: every message is written once into each index.
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+", db_index=False)
    phone_number = models.ForeignKey(PhoneNumber, on_delete=models.CASCADE, related_name="messages", db_index=False)
    wamid = models.CharField(max_length=255, unique=True, null=True, blank=True)
    direction = models.CharField(max_length=8, choices=Direction.choices)
    status = models.CharField(max_length=16, choices=Status.choices)
    contact_wa_id = models.CharField("contact", max_length=CONTACT_KEY_LENGTH, help_text=CONTACT_KEY_HELP)
    contact_user_id = models.CharField(
        "business-scoped user id", max_length=64, blank=True, help_text="The sender's id from Meta (BSUID)"
    )
    group_id = models.CharField(
        max_length=CONTACT_KEY_LENGTH, blank=True, help_text="The WhatsApp group it was sent in"
    )
    contact_name = models.CharField(max_length=200, blank=True)
    type = models.CharField(max_length=32)
    text = models.TextField(blank=True, help_text="Text body, caption or a short summary")
    payload = models.JSONField(default=dict, help_text="The message object as Meta sent or received it")
    error = models.JSONField(null=True, blank=True, help_text="Meta's error for a failed send")
    message_status = models.CharField(  # noqa: DJ001 (null is "Meta gave none", not an empty status)
        max_length=64,
        null=True,
        blank=True,
        help_text="Meta's `message_status` in its answer to the send (template pacing: `accepted`, "
        "`held_for_quality_assessment`), as Meta gave it; null when Meta gave none",
    )
    timestamp = models.DateTimeField(default=timezone.now, help_text="When the sender sent it")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    read_at = models.DateTimeField(null=True, blank=True)
    read_via = models.CharField(max_length=16, choices=ReadVia.choices, blank=True)
    read_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    read_by_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # The Idempotency-Key a send came with: a retry that takes over a dead request's key finds its message.
    idempotency_record = models.ForeignKey(
        "IdempotencyRecord",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    # A call to Meta in flight for this row (a read receipt, or the send of an outbound message): whoever
    # set the token makes the one call, with no transaction open; `claim_expires_at` is its lease, after
    # which another request may take over from a holder that died.
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    claim_expires_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = MessageQuerySet.as_manager()

    class Meta:
        indexes = (
            # An org's messages, newest first: the admin's message list for its staff, whose count and
            # page read the org's newest rows instead of walking every org's (and what the org's FK
            # index served before).
            models.Index(fields=["org", "-id"], name="message_org_recent"),
            # A number's timeline, newest first: the API list and the inbox.
            models.Index(fields=["phone_number", "-timestamp", "-external_id"], name="message_number_timeline"),
            # One conversation's thread, and "earlier unread messages of this conversation".
            models.Index(fields=["phone_number", "contact_wa_id", "timestamp"], name="message_conversation"),
            # Unread inbound rows are the hot, small subset: receipts, unread counts, batch_read.
            models.Index(
                fields=["phone_number", "contact_wa_id", "timestamp"],
                condition=Q(direction="inbound", status="received"),
                name="message_unread_inbound",
            ),
            # What changed since a live inbox last asked: new rows, moved ticks, reads.
            models.Index(fields=["updated_at", "id"], name="message_changed"),
            # Media Kirim received, by Meta's media id: who may download it (inbox.selectors.media_number_of).
            # Partial: only media messages pay for it.
            models.Index(MEDIA_ID_IN_PAYLOAD, condition=MEDIA_MESSAGES, name="message_media_id"),
            # Calls to Meta in flight, few at any time: purge_expired finds sends whose request died.
            models.Index(
                fields=["claim_expires_at"], condition=Q(claim_expires_at__isnull=False), name="message_claimed"
            ),
            # For deleting what a message points at (SET_NULL), and a send's idempotency key: only the
            # rows that hold one, where a full index would take every inbound message's NULL too.
            *(
                models.Index(fields=[field], condition=Q(**{f"{field}__isnull": False}), name=f"message_{field}")
                for field in ("read_by_user", "read_by_key", "idempotency_record")
            ),
        )
        # On PostgreSQL, migration 0013 adds a trigram index on UPPER(text) for the inbox's search, and
        # 0018 drops the LIKE-prefix indexes Django adds beside the unique wamid and external_id.

    def __str__(self):
        return f"{self.external_id} {self.direction} {self.contact_wa_id}"

    @property
    def is_read(self):
        return self.status == Status.READ

    @classmethod
    def for_wamid(cls, wamid):
        """The message with this wamid, with its number, in one query on the unique wamid index."""
        return MESSAGE_WITH_NUMBER_BY_WAMID.get(wamid)


# What every API request and every read receipt looks up, as hand-written SQL (kirim/lookups.py: why).
KEY_WITH_ORG_BY_DIGEST = JoinedRowLookup(ApiKey, "org", "digest")
MESSAGE_WITH_NUMBER_BY_WAMID = JoinedRowLookup(Message, "phone_number", "wamid")


# Outbound statuses only move up this ladder; `failed` is terminal and only replaces a status below
# `delivered` (a message that reached the phone did not fail).
# Meta may skip `delivered` (and `sent`); a voice message is `played` after it is read, so `played` is
# the top: a late `read` never takes the microphone back. `unconfirmed`: a send whose answer was lost.
OUTBOUND_RANK = {
    Status.PENDING: 0, Status.UNCONFIRMED: 1, Status.ACCEPTED: 2, Status.SENT: 3, Status.DELIVERED: 4, Status.READ: 5,
    Status.PLAYED: 6,
}  # fmt: skip
FAILABLE = tuple(s for s, rank in OUTBOUND_RANK.items() if rank < OUTBOUND_RANK[Status.DELIVERED])


def statuses_below(status):
    """The outbound statuses a webhook's `status` may replace."""
    if status == Status.FAILED:
        return FAILABLE
    return tuple(s for s, rank in OUTBOUND_RANK.items() if rank < OUTBOUND_RANK[status])


class IdempotencyRecord(models.Model):
    """The first response to a send with an `Idempotency-Key`, per org, kept 24 hours. The unique
    constraint is what makes a key claimable once across processes and hosts."""

    taken_over = False  # set by inbox.idempotency's claim: this request took over one that died

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress"
        DONE = "done"

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_digest = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    # While in progress: after this, the request holding the key is taken for dead and a retry takes over.
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = (models.UniqueConstraint(fields=("org", "key"), name="idempotency_key_unique_per_org"),)


# An event not processed within this long after it came is taken as failed (its worker died).
WEBHOOK_IN_FLIGHT = timedelta(minutes=5)


class WebhookEventQuerySet(models.QuerySet):
    def failed(self, now=None):
        """Events with an item (or all) not applied, and events whose processing never finished: the
        ones `reprocess_webhooks` and the admin retry. A fresh unprocessed event may still be in flight."""
        in_flight_since = (now or timezone.now()) - WEBHOOK_IN_FLIGHT
        return self.filter(~Q(error="") | Q(processed_at__isnull=True, received_at__lt=in_flight_since))

    def applied(self):
        """Events applied whole."""
        return self.filter(error="", processed_at__isnull=False)


class WebhookEvent(models.Model):
    """Every signed webhook Meta delivered, kept raw (in the transaction that applies it), so nothing
    we acknowledge is lost even when applying some of it fails. `error` and `failed_items` say what
    was not applied, and why; `processed_at` is empty when a bug stopped the whole payload."""

    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    body = models.TextField()
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    failed_items = models.JSONField(
        default=list, blank=True, help_text="[{item, reason}] for each message or status that could not be stored"
    )
    attempts = models.PositiveSmallIntegerField(default=1, help_text="Times it was applied, reprocessing included")

    objects = WebhookEventQuerySet.as_manager()

    class Meta:
        indexes = (models.Index(fields=["received_at"], condition=~Q(error=""), name="webhook_event_failed"),)

    def __str__(self):
        return f"webhook {self.pk} at {self.received_at:%Y-%m-%d %H:%M:%S}"

    @property
    def failure(self):
        """Why it was not applied whole, for people: "" when it was."""
        if self.error:
            return self.error
        return "" if self.processed_at else "not processed (its worker stopped)"


class RateLimitWindow(models.Model):
    """Requests an org made in one minute. Counted by one upsert per request, so the limit holds across
    every worker and host sharing the database; `manage.py purge_expired` deletes old windows.
    Unlogged on PostgreSQL (migration 0008): a count need not survive a crash."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+")
    minute = models.BigIntegerField(help_text="Unix time // 60")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = (models.UniqueConstraint(fields=("org", "minute"), name="rate_limit_window_unique"),)


class AuthFailureWindow(models.Model):
    """Failed API authentications from one client address in one minute, as added by every process in
    batches (inbox.ratelimit.AuthFailures), so the throttle holds across hosts without a write per
    failure. Unlogged on PostgreSQL (migration 0017), like RateLimitWindow."""

    address = models.CharField(max_length=64, help_text="an IPv4 address, or an IPv6 /64 network")
    minute = models.BigIntegerField(help_text="Unix time // 60")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = (models.UniqueConstraint(fields=("address", "minute"), name="auth_failure_window_unique"),)


class EarlyStatus(models.Model):
    """A delivery status that arrived before its send's wamid was stored (Meta's webhook can beat
    our own write of Meta's answer). Applied, then deleted, when that wamid is stored."""

    phone_number_id = models.CharField(max_length=20)
    wamid = models.CharField(max_length=255, db_index=True)
    status = models.CharField(max_length=16)
    errors = models.JSONField(null=True, blank=True)
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name_plural = "early statuses"


class UploadedMedia(models.Model):
    """Media an org uploaded through Kirim (Meta's media id), and the number whose token uploaded it: with
    the media of inbound messages, the only media Kirim reads from Meta for that org. Meta keeps an
    upload 30 days (UPLOADED_MEDIA_LIFETIME); purge_expired forgets it then."""

    # Its own index would repeat the leading column of the unique constraint.
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+", db_index=False)
    phone_number = models.ForeignKey(PhoneNumber, on_delete=models.CASCADE, related_name="+")
    media_id = models.CharField(max_length=255)
    uploaded_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name_plural = "uploaded media"
        constraints = (models.UniqueConstraint(fields=("org", "media_id"), name="uploaded_media_unique_per_org"),)


UPLOADED_MEDIA_LIFETIME = timedelta(days=30)


class MessageTemplate(models.Model):
    """A message template of a WhatsApp Business Account, as last synced from Meta. Outside the 24-hour
    customer service window an agent can only reply with an APPROVED one."""

    APPROVED = "APPROVED"

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+")
    waba_id = models.CharField("WABA id", max_length=32)
    meta_id = models.CharField(max_length=64)
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=16)
    status = models.CharField(max_length=32)
    category = models.CharField(max_length=32, blank=True)
    parameter_format = models.CharField(max_length=16, default="POSITIONAL")
    components = models.JSONField(default=list)
    synced_at = models.DateTimeField()

    class Meta:
        ordering = ("name", "language")
        constraints = (
            models.UniqueConstraint(fields=("org", "waba_id", "name", "language"), name="template_unique_per_waba"),
        )

    def __str__(self):
        return f"{self.name} ({self.language})"

    def _component(self, kind):
        return next((c for c in self.components if isinstance(c, dict) and c.get("type") == kind), {})

    def unsupported_reason(self):
        """Why the admin cannot send this template (it needs media or button values), or ''."""
        header = self._component("HEADER")
        if header and header.get("format", "TEXT") != "TEXT":
            return f"its header needs a {str(header.get('format')).lower()}"
        buttons = self._component("BUTTONS").get("buttons") or []
        if any(PLACEHOLDER.search(str(b.get("url", ""))) for b in buttons if isinstance(b, dict)):
            return "a button needs a value"
        return ""

    def parameters(self):
        """The values a send must fill in: (component, placeholder) in order, header first."""
        found = []
        for kind in ("HEADER", "BODY"):
            names = dict.fromkeys(PLACEHOLDER.findall(str(self._component(kind).get("text", ""))))
            found += [(kind.lower(), name) for name in names]
        return found

    def render(self, values):
        """The body text with `values` ({(component, placeholder): text}) filled in, for the thread."""
        body = str(self._component("BODY").get("text", ""))
        return PLACEHOLDER.sub(lambda m: values.get(("body", m.group(1)), m.group(0)), body)

    def send_body(self, to, values):
        """Meta's send body for this template to `to`, with `values` as above."""
        components = []
        for kind in ("header", "body"):
            names = [name for component, name in self.parameters() if component == kind]
            if names:
                named = self.parameter_format == "NAMED"
                components.append({
                    "type": kind,
                    "parameters": [
                        {"type": "text", **({"parameter_name": name} if named else {}), "text": values[(kind, name)]}
                        for name in names
                    ],
                })  # fmt: skip
        template: dict[str, object] = {"name": self.name, "language": {"code": self.language}}
        if components:
            template["components"] = components
        return {"messaging_product": "whatsapp", "to": to, "type": "template", "template": template}


PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


class ScheduledJob(models.Model):
    """A periodic job of `manage.py scheduler` and the period it was last claimed for. Schedulers on any
    number of hosts claim a period with one conditional UPDATE of this row, so each period runs once;
    a claim whose scheduler died before finishing is taken over once its lease has run out."""

    name = models.CharField(max_length=64, primary_key=True)
    period = models.BigIntegerField(default=-1)  # the last claimed: seconds since the epoch // the job's period
    done = models.BooleanField(default=True)  # the claimed period's run finished (or failed, and was logged)
    claim = models.CharField(max_length=100, blank=True)  # host, process and a random part: whose run it is
    leased_until = models.DateTimeField(null=True)
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)

    def __str__(self):
        return f"{self.name} (period {self.period}, {'done' if self.done else 'running'})"
