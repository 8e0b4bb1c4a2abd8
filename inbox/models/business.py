"""What Meta tells a business beyond its messages (inbox.services.business): contacts (the names saved
in the WhatsApp Business app, blocks), the account's events, and the price tallies."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from inbox.models.messages import CONTACT_KEY_HELP, CONTACT_KEY_LENGTH
from inbox.models.numbers import PhoneNumber
from orgs.models import Org


class Contact(models.Model):
    """A person a number talks with, keyed as their conversation is (`contact_wa_id`): the name the
    business saved in the WhatsApp Business app (smb_app_state_sync), and whether the business blocked
    them (Meta's Block Users API). Exists only once one of those is known."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+", db_index=False)
    phone_number = models.ForeignKey(PhoneNumber, on_delete=models.CASCADE, related_name="contacts", db_index=False)
    contact_wa_id = models.CharField("contact", max_length=CONTACT_KEY_LENGTH, help_text=CONTACT_KEY_HELP)
    saved_name = models.CharField(max_length=200, blank=True, help_text="As saved in the WhatsApp Business app")
    blocked = models.BooleanField(default=False)
    blocked_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=("phone_number", "contact_wa_id"), name="contact_unique_per_number"),
        )
        indexes = (models.Index(fields=["org", "blocked"], condition=Q(blocked=True), name="contact_blocked"),)

    def __str__(self):
        return f"{self.saved_name or self.contact_wa_id}{' (blocked)' if self.blocked else ''}"


class AccountEvent(models.Model):
    """What Meta told about a business account or its numbers and templates (account_update,
    phone_number_quality_update, message_template_status_update, ...), kept as Meta sent it for managers."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+", db_index=False)
    waba_id = models.CharField("WABA id", max_length=32)
    field = models.CharField(max_length=64, help_text="Meta's webhook field")
    event = models.CharField(max_length=64, blank=True, help_text="Meta's `event`, where it gives one")
    value = models.JSONField(help_text="Meta's `value`, as sent")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = (models.Index(fields=["org", "-received_at"], name="account_event_org_recent"),)

    def __str__(self):
        return f"{self.field} {self.event}".strip()


class PriceTally(models.Model):
    """Priced messages counted by day, number, template and Meta's pricing: the price report sums these
    few rows instead of every message (inbox.services.business). A message is counted once, when its first
    status with `pricing` arrives; ConversationPriceTally counts it by conversation."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+", db_index=False)
    phone_number = models.ForeignKey(PhoneNumber, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    template_name = models.CharField(max_length=512, blank=True)
    category = models.CharField(max_length=32, blank=True)
    pricing_type = models.CharField(max_length=32, blank=True)
    billable = models.BooleanField()
    messages = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = verbose_name_plural = "price report"
        constraints = (
            models.UniqueConstraint(
                fields=("org", "day", "phone_number", "template_name", "category", "pricing_type", "billable"),
                name="price_tally_unique",
            ),
        )


class ConversationPriceTally(models.Model):
    """Priced and billable messages of one conversation on one day: the report's conversations. Apart
    from PriceTally, so that its rows are one per conversation and day, whatever the templates."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+", db_index=False)
    phone_number = models.ForeignKey(PhoneNumber, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    contact_wa_id = models.CharField(max_length=CONTACT_KEY_LENGTH)
    messages = models.PositiveIntegerField(default=0)
    billable = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=("org", "day", "phone_number", "contact_wa_id"), name="conversation_price_tally_unique"
            ),
        )
