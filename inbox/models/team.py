"""The team's work on conversations (inbox.services.teaminbox): labels, private notes, saved replies,
and the cycles the reports read."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.ids import PublicIdField
from inbox.models.conversations import Conversation
from orgs.models import Org


class Label(models.Model):
    """An org's tag for conversations ("billing", "vip"); the inbox filters by them."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+", db_index=False)
    name = models.CharField(max_length=64)
    color = models.CharField(max_length=7, default="#54656f", help_text="#rrggbb")

    class Meta:
        ordering = ("name",)
        constraints = (models.UniqueConstraint(fields=("org", "name"), name="label_unique_per_org"),)

    def __str__(self):
        return self.name


class ConversationLabel(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, db_index=False)
    label = models.ForeignKey(Label, on_delete=models.CASCADE)  # its index serves the label filter

    class Meta:
        constraints = (models.UniqueConstraint(fields=("conversation", "label"), name="conversation_label_unique"),)


class Note(models.Model):
    """A private note in a conversation's thread: for the team only, never sent to WhatsApp."""

    external_id = PublicIdField("note")
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+", db_index=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes", db_index=False)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = (models.Index(fields=["conversation", "created_at"], name="note_conversation"),)

    def __str__(self):
        return f"note {self.external_id}"


class SavedReply(models.Model):
    """An org's canned response: `body` with {{contact_name}} and {{agent_name}} filled in when an agent
    inserts it, and an optional file sent with it (kept here, small: every host reads the database)."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+", db_index=False)
    name = models.CharField(max_length=100, help_text="What agents pick it by")
    body = models.TextField(help_text="{{contact_name}} and {{agent_name}} are filled in")
    attachment = models.BinaryField(null=True, blank=True, editable=True)
    attachment_name = models.CharField(max_length=200, blank=True)
    attachment_type = models.CharField(max_length=100, blank=True)

    class Meta:
        verbose_name_plural = "saved replies"
        ordering = ("name",)
        constraints = (models.UniqueConstraint(fields=("org", "name"), name="saved_reply_unique_per_org"),)

    def __str__(self):
        return self.name


class ConversationCycle(models.Model):
    """A resolved cycle of a conversation, kept when it was resolved: what the reports read beside the
    open cycles of Conversation."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+", db_index=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+", db_index=False)
    opened_at = models.DateTimeField()
    first_response_at = models.DateTimeField(null=True)
    first_responder = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    resolved_at = models.DateTimeField()
    resolver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )

    class Meta:
        indexes = (
            models.Index(fields=["org", "resolved_at"], name="cycle_org_resolved"),
            models.Index(fields=["org", "opened_at"], name="cycle_org_opened"),
        )


class HourlyMessageCount(models.Model):
    """An org's messages in and out in one past hour: the reports' rollup, so that a report never
    counts a million messages again. Written by inbox.services.reports once the hour is over, and
    then not changed."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+", db_index=False)
    hour = models.DateTimeField()
    inbound = models.PositiveIntegerField()
    outbound = models.PositiveIntegerField()

    class Meta:
        constraints = (models.UniqueConstraint(fields=("org", "hour"), name="hourly_message_count_unique"),)
