"""WhatsApp numbers (connected only once Meta confirms them) and their message templates."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote

from core.errors import ApiError
from inbox.models import (
    AuditAction,
    MessageTemplate,
    PhoneNumber,
)
from inbox.services import replies
from inbox.services.numbers import phone_number_confirm
from orgs.audit import audit_record
from orgs.scope import MANAGERS, OrgScopedAdmin

CONNECTING_FIELDS = ("phone_number_id", "waba_id", "access_token")  # a change of any: Meta confirms again


class PhoneNumberForm(forms.ModelForm):
    """The Meta access token is write-only: never rendered, kept when left blank on change. A new
    number, or a new id, WABA or token for one, is saved only with Meta's confirmation that the token
    can act for the number (PhoneNumberAdmin asks Meta before the form runs: `confirmation`)."""

    confirmation = None  # inbox.services.numbers.Confirmation, or the ApiError that refused one

    access_token = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Write-only. Leave blank to keep the current token.",
    )

    class Meta:
        model = PhoneNumber
        fields = (
            "org",
            "phone_number_id",
            "display_phone_number",
            "waba_id",
            "access_token",
            "read_receipt_policy",
            "typing_indicator",
            "auto_assign",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Compared with a blank input, the stored token would count as changed on every save, and the
        # history would say "Changed access token" when nobody did.
        self.initial["access_token"] = ""

    def clean_access_token(self):
        token = self.cleaned_data["access_token"].strip()
        if token:
            return token
        if self.instance.pk:
            return PhoneNumber.objects.only("access_token").get(pk=self.instance.pk).access_token
        raise forms.ValidationError("A new number needs Meta's access token.")

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        connecting = {name: cleaned.get(name) for name in CONNECTING_FIELDS}
        if self.errors or connecting == {name: getattr(self.instance, name) for name in CONNECTING_FIELDS}:
            return cleaned
        # An error on the id also keeps Django from saying whether the id is taken (it skips the unique
        # check of a field in error): without Meta's confirmation, nothing is told about the number.
        if isinstance(self.confirmation, ApiError):
            self.add_error(self.confirmation.param or "phone_number_id", self.confirmation.message)
        elif self.confirmation is None or not self.confirmation.covers(**connecting):
            self.add_error("phone_number_id", "Meta did not confirm this number with this access token.")
        return cleaned


@admin.register(PhoneNumber)
class PhoneNumberAdmin(OrgScopedAdmin):
    roles = MANAGERS
    form = PhoneNumberForm

    list_display = ("display_phone_number", "phone_number_id", "org", "waba_id", "read_receipt_policy",
                    "quality_event", "messaging_limit", "created_at")  # fmt: skip
    list_filter = ("org", "read_receipt_policy")
    readonly_fields = ("quality_event", "messaging_limit", "quality_updated_at")  # Meta's, by its webhooks
    list_select_related = ("org",)
    search_fields = ("=phone_number_id", "display_phone_number")
    actions = ("sync_templates",)

    @admin.action(description="Sync message templates from Meta", permissions=("change",))
    def sync_templates(self, request, queryset):
        outcomes = replies.templates_sync_each(queryset)
        for number, outcome in outcomes:
            if isinstance(outcome, ApiError):
                self.message_user(request, f"{number}: {outcome.message}", messages.ERROR)
            else:
                self.message_user(request, outcome.summary())
        if not outcomes:
            self.message_user(request, "None of the selected numbers has a WABA id.", messages.WARNING)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change or "access_token" in form.changed_data:
            audit_record(request, AuditAction.TOKEN_CHANGED, org=obj.org_id, target=obj.phone_number_id,
                         detail="connected" if not change else "replaced in the admin")  # fmt: skip

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Django validates and saves the form in one transaction: Meta is asked before it opens.
        if request.method == "POST":
            request.number_confirmation = self._confirmation(request, object_id)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _confirmation(self, request, object_id):
        """Meta's confirmation of the number, WABA and token posted (a blank token: the stored one), or
        the ApiError that refused it; None when there is nothing to confirm, or not for this user."""
        number = self.get_object(request, unquote(object_id)) if object_id else None
        if not (self.has_change_permission(request, number) if number else self.has_add_permission(request)):
            return None
        posted = {name: request.POST.get(name, "").strip() for name in CONNECTING_FIELDS}
        posted["access_token"] = posted["access_token"] or (number.access_token if number else "")
        if number is not None and posted == {name: getattr(number, name) for name in CONNECTING_FIELDS}:
            return None
        try:
            return phone_number_confirm(**posted)
        except ApiError as error:
            return error

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"confirmation": getattr(request, "number_confirmation", None)})


@admin.register(MessageTemplate)
class MessageTemplateAdmin(OrgScopedAdmin):
    """Templates as last synced from Meta (the number list's "Sync message templates" action, or
    `manage.py sync_templates`): read-only here, since Meta owns them."""

    list_display = ("name", "language", "status", "category", "quality_score", "waba_id", "org", "synced_at")
    list_filter = ("status", "category", "quality_score", "org")
    search_fields = ("name",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
