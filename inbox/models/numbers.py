"""Numbers: a business's WhatsApp numbers, how each reads and replies, and their message templates."""

import re
from typing import Any

from django.conf import settings
from django.db import models

from core.encryption import EncryptedTextField
from orgs.models import Org


class ReadReceiptPolicy(models.TextChoices):
    """When the admin inbox tells a contact their messages were read."""

    MANUAL = "manual", "Manual: staff click Mark read"
    ON_OPEN = "on_open", "On open: opening the thread reads the conversation"
    ON_REPLY = "on_reply", "On reply: sending a reply first reads the conversation"


class PhoneNumber(models.Model):
    """A business number connected to Meta. `access_token` is a secret: it is only ever sent to Meta."""

    secret_fields = ("access_token",)  # write-only in the admin, never a lookup (orgs/scope.py)

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="phone_numbers")
    phone_number_id = models.CharField(max_length=20, unique=True, help_text="Meta's id, digits only")
    display_phone_number = models.CharField(max_length=32)
    waba_id = models.CharField("WABA id", max_length=32, blank=True)
    access_token = EncryptedTextField()  # encrypted at rest (core/encryption.py)
    read_receipt_policy = models.CharField(
        max_length=16, choices=ReadReceiptPolicy.choices, default=ReadReceiptPolicy.MANUAL
    )
    typing_indicator = models.BooleanField(
        default=False,
        help_text="Show the contact a typing bubble while an agent writes a reply in the admin. Meta sends it "
        "with a read receipt, so it also marks the conversation read; show it only when a reply follows.",
    )
    auto_assign = models.BooleanField(
        "assign new conversations automatically",
        default=False,
        db_default=False,
        help_text="Give each new or reopened conversation that nobody has to the next agent of the org who has "
        "the inbox open, in turn (round robin).",
    )
    # Whose turn was last: the next goes to the present agent after this one (inbox.services.teaminbox).
    auto_assign_last = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The number's health as Meta's phone_number_quality_update webhook last told it (inbox.services.business).
    quality_event = models.CharField(
        max_length=32, blank=True, db_default="", help_text="Meta's last quality event: FLAGGED, UNFLAGGED, ..."
    )
    messaging_limit = models.CharField(
        max_length=32, blank=True, db_default="", help_text="Meta's messaging limit tier, e.g. TIER_1K"
    )
    quality_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("display_phone_number",)

    def __str__(self):
        return self.display_phone_number


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
    quality_score = models.CharField(max_length=16, blank=True, db_default="", help_text="GREEN, YELLOW, RED")
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

    def unsupported_reason(self) -> str:
        """Why the admin cannot send this template (it needs media or button values), or ''."""
        header = self._component("HEADER")
        if header and header.get("format", "TEXT") != "TEXT":
            return f"its header needs a {str(header.get('format')).lower()}"
        buttons = self._component("BUTTONS").get("buttons") or []
        if any(PLACEHOLDER.search(str(b.get("url", ""))) for b in buttons if isinstance(b, dict)):
            return "a button needs a value"
        return ""

    def parameters(self) -> list[tuple[str, str]]:
        """The values a send must fill in: (component, placeholder) in order, header first."""
        found = []
        for kind in ("HEADER", "BODY"):
            names = dict.fromkeys(PLACEHOLDER.findall(str(self._component(kind).get("text", ""))))
            found += [(kind.lower(), name) for name in names]
        return found

    def render(self, values: dict[tuple[str, str], str]) -> str:
        """The body text with `values` ({(component, placeholder): text}) filled in, for the thread."""
        body = str(self._component("BODY").get("text", ""))
        return PLACEHOLDER.sub(lambda m: values.get(("body", m.group(1)), m.group(0)), body)

    def send_body(self, to: str, values: dict[tuple[str, str], str]) -> dict[str, Any]:
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
