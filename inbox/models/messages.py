"""Messages in and out, their statuses and media (their conversations: conversations.py)."""

import uuid
from datetime import timedelta
from functools import reduce
from operator import or_
from typing import Any, Self

from django.conf import settings
from django.db import models
from django.db.models import OuterRef, Q
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.db.lookups import JoinedRowLookup
from core.ids import PublicIdField
from inbox.models.numbers import PhoneNumber
from orgs.models import ApiKey, Org


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
    def unread_inbound(self) -> Self:
        return self.filter(direction=Direction.INBOUND, status=Status.RECEIVED)

    def conversation(self, phone_number_id: int, contact_wa_id: str) -> Self:
        return self.filter(phone_number_id=phone_number_id, contact_wa_id=contact_wa_id)

    def unread_of_outer_conversation(self):
        """Unread inbound messages of the conversation row of an outer query, for correlated
        subqueries over conversations (served by the partial index message_unread_inbound)."""
        return self.unread_inbound().filter(
            phone_number_id=OuterRef("phone_number_id"), contact_wa_id=OuterRef("contact_wa_id")
        )

    def lock_in_pk_order(self, *fields: str) -> list[tuple[Any, ...]]:
        """Lock the rows with SELECT ... FOR UPDATE in primary-key order; return `fields` of each.

        Every path that locks messages goes through here: two transactions locking overlapping rows
        in different orders deadlock, and primary-key order is the one order all of them share."""
        return list(self.select_for_update(of=("self",)).order_by("pk").values_list(*fields))

    def claim_unread(self, pk: int, *, lease: float) -> uuid.UUID | None:
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

    def release_claim(self, pk: int, token: uuid.UUID) -> None:
        """Give up our claim on message `pk` (its call failed); a claim taken over since is left alone."""
        self.filter(pk=pk, claim_token=token).update(claim_token=None, claim_expires_at=None)


# A conversation's key: the contact's phone number (wa_id) when Meta first gave one, else its
# business-scoped user id; for a group, the group's id. It stays when the user adopts a username or
# changes number: later messages find the conversation by its business-scoped user id.
CONTACT_KEY_LENGTH = 128
CONTACT_KEY_HELP = "Phone number (wa_id) or business-scoped user id of the contact, or the group's id"


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
    # The WhatsApp Business app on the same number (coexistence): staff sent it from the phone.
    sent_from_app = models.BooleanField(default=False, db_default=False)
    edited_at = models.DateTimeField(null=True, blank=True)
    edits = models.JSONField(null=True, blank=True, help_text="[{text, until}]: the earlier texts of an edited message")
    deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="Deleted by its sender: its content is gone from everywhere Kirim kept it"
    )
    pricing = models.JSONField(null=True, blank=True, help_text="Meta's `pricing` from the message's status webhook")
    read_at = models.DateTimeField(null=True, blank=True)
    # When its content was erased (the contact's erasure, or retention): text, payload, error and name emptied.
    content_erased_at = models.DateTimeField(null=True, blank=True, editable=False)
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
    def for_wamid(cls, wamid: str) -> "Message | None":
        """The message with this wamid, with its number, in one query on the unique wamid index."""
        return MESSAGE_WITH_NUMBER_BY_WAMID.get(wamid)


MESSAGE_WITH_NUMBER_BY_WAMID = JoinedRowLookup(Message, "phone_number", "wamid")
# Outbound statuses only move up this ladder; `failed` is terminal and only replaces a status below
# `delivered` (a message that reached the phone did not fail).
# Meta may skip `delivered` (and `sent`); a voice message is `played` after it is read, so `played` is
# the top: a late `read` never takes the microphone back. `unconfirmed`: a send whose answer was lost.
OUTBOUND_RANK: dict[str, int] = {
    Status.PENDING: 0, Status.UNCONFIRMED: 1, Status.ACCEPTED: 2, Status.SENT: 3, Status.DELIVERED: 4, Status.READ: 5,
    Status.PLAYED: 6,
}  # fmt: skip


FAILABLE = tuple(s for s, rank in OUTBOUND_RANK.items() if rank < OUTBOUND_RANK[Status.DELIVERED])


def statuses_below(status: str) -> tuple[str, ...]:
    """The outbound statuses a webhook's `status` may replace."""
    if status == Status.FAILED:
        return FAILABLE
    return tuple(s for s, rank in OUTBOUND_RANK.items() if rank < OUTBOUND_RANK[status])


class EarlyStatus(models.Model):
    """A delivery status that arrived before its send's wamid was stored (Meta's webhook can beat
    our own write of Meta's answer). Applied, then deleted, when that wamid is stored."""

    phone_number_id = models.CharField(max_length=20)
    wamid = models.CharField(max_length=255, db_index=True)
    status = models.CharField(max_length=16)
    errors = models.JSONField(null=True, blank=True)
    pricing = models.JSONField(null=True, blank=True)  # Meta's, priced on the message once it is stored
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
