"""Conversations: one contact's thread on one number, the inbox's rows, and where the team is with it."""

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.ids import PublicIdField
from inbox.models.messages import CONTACT_KEY_HELP, CONTACT_KEY_LENGTH, Direction, Message, MessageQuerySet
from inbox.models.numbers import PhoneNumber
from orgs.models import Org

if TYPE_CHECKING:  # the team's models import these: only the type checker follows them back
    from inbox.models.team import ConversationLabel, Label


class ConversationState(models.TextChoices):
    """Where the team is with a conversation. A new inbound message reopens a resolved or snoozed one
    (inbox.services.inbound_rows' upsert); a snooze past its time counts as open (inbox.services.teaminbox)."""

    OPEN = "open"
    PENDING = "pending"  # waiting on the contact or on someone else
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class Conversation(models.Model):
    """One contact's thread on one number: the inbox's rows. Keeps only what changes when a message
    arrives or is sent (last activity, preview, name) and the team's work on it (state, assignee,
    labels), so reads never write here; unread counts come from the partial index on messages, for
    the conversations on screen only."""

    # Null only for rows a release before this one inserted; migration 0022 fills the ones it finds.
    external_id = PublicIdField("cnv", null=True)

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
    # The team's work. Database defaults: the webhooks' upsert inserts conversations in raw SQL.
    state = models.CharField(
        max_length=16, choices=ConversationState.choices, default=ConversationState.OPEN,
        db_default=ConversationState.OPEN,
    )  # fmt: skip
    snoozed_until = models.DateTimeField(null=True, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    labels: "models.ManyToManyField[Label, ConversationLabel]" = models.ManyToManyField(
        "Label", through="ConversationLabel", related_name="conversations", blank=True
    )
    # The current cycle, from the inbound message that opened it (or reopened it, once resolved) to its
    # resolution, which ConversationCycle then keeps: the reports' first response and resolution times.
    opened_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    first_responder = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # When the team last changed it (state, assignee, labels, a note): what live inbox pages ask for
    # beside new messages. Messages never write it.
    team_changed_at = models.DateTimeField(null=True, blank=True, db_index=True)

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
            # "Mine" and an agent's workload: only assigned rows pay for it.
            models.Index(
                fields=["assignee", "-last_message_at"],
                condition=Q(assignee__isnull=False),
                name="conversation_assignee",
            ),
            # The contact page: a contact's conversations on every number of the org.
            models.Index(fields=["org", "contact_wa_id"], name="conversation_org_contact"),
        )
        permissions = (
            ("mark_read", "Can mark inbound messages read on WhatsApp"),
            ("reply", "Can reply to contacts on WhatsApp"),
            ("manage", "Can assign conversations, change their state and labels, and write notes"),
            ("view_reports", "Can see the inbox's reports"),
            ("block", "Can block and unblock contacts on WhatsApp"),
        )

    def __str__(self):
        return f"{self.contact_name or self.contact_wa_id} on {self.phone_number_id}"

    def messages(self) -> MessageQuerySet:
        return Message.objects.conversation(self.phone_number_id, self.contact_wa_id)

    @property
    def contact_shown(self):
        """The contact's key as people read it: +number, or a business-scoped user id or group id."""
        key = self.contact_wa_id
        return f"+{key}" if key.isdigit() else key
