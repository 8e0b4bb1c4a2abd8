"""Orgs, their API keys (shown once, then rotated or revoked), their staff members and the audit log."""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone

from core.errors import ApiError
from inbox.admin.readonly import ReadOnly
from inbox.models import (
    ApiKey,
    AuditAction,
    AuditEntry,
    Membership,
    Org,
    Scope,
)
from orgs.audit import audit_record
from orgs.keys import api_key_rotate
from orgs.members import membership_set, memberships_remove
from orgs.scope import MANAGERS, OrgScopedAdmin


@admin.register(Org)
class OrgAdmin(OrgScopedAdmin):
    org_path = "pk"
    ordering = ("name",)
    list_display = ("name", "slug", "external_id", "created_at")
    search_fields = ("name", "slug", "=external_id")
    prepopulated_fields = {"slug": ("name",)}  # noqa: RUF012 (Django's own API)
    readonly_fields = ("external_id", "created_at")


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        initial=Scope.values,
        widget=forms.CheckboxSelectMultiple,
        help_text="What the key may do; a key for a read-only dashboard needs messages:read alone.",
    )

    class Meta:
        model = ApiKey
        fields = ("org", "name", "expires_at", "scopes")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["scopes"] = self.instance.scopes.split()

    def clean_scopes(self):
        return " ".join(scope for scope in Scope.values if scope in self.cleaned_data["scopes"])


@admin.register(ApiKey)
class ApiKeyAdmin(OrgScopedAdmin):
    """A key is created here and shown once, on the page that answers the create; only its digest
    is stored. It is never put in a message or session, which would store it."""

    roles = MANAGERS
    form = ApiKeyForm
    list_display = ("__str__", "org", "created_at", "expires_at", "revoked_at", "last_used_at")
    list_filter = ("org",)
    list_select_related = ("org",)
    readonly_fields = ("external_id", "display_prefix", "created_at", "last_used_at", "revoked_at")
    actions = ("rotate", "revoke")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ApiKeyForm.Meta.fields  # a new key: nothing to show but what the form asks
        return ("external_id", "display_prefix", *ApiKeyForm.Meta.fields, "created_at", "last_used_at", "revoked_at")

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        key, secret = ApiKey.issue(org=obj.org, name=obj.name, expires_at=obj.expires_at, scopes=obj.scopes)
        obj.pk, obj.external_id = key.pk, key.external_id
        request._issued_api_key = secret
        audit_record(request, AuditAction.KEY_CREATED, org=obj.org, target=key, detail=key.scopes)

    def response_add(self, request, obj, post_url_continue=None):
        return self.issued(request, obj, request._issued_api_key, title="API key created")

    def issued(self, request, key, secret, *, title, replaces=None):
        return TemplateResponse(
            request,
            "admin/inbox/apikey/issued.html",
            {**self.admin_site.each_context(request), "title": title, "key": key, "secret": secret,
             "replaces": replaces, "opts": self.opts},
        )  # fmt: skip

    @admin.action(
        description="Rotate the selected API key (the old one works for a grace period)", permissions=("change",)
    )
    def rotate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select one key to rotate: its successor is shown once.", messages.WARNING)
            return None
        old = queryset.get()
        try:
            key, secret = api_key_rotate(key=old)
        except ApiError as error:
            self.message_user(request, error.message, messages.ERROR)
            return None
        audit_record(request, AuditAction.KEY_ROTATED, org=old.org_id, target=old, detail=key.external_id)
        return self.issued(request, key, secret, title="API key rotated", replaces=old)

    @admin.action(description="Revoke selected API keys", permissions=("change",))
    def revoke(self, request, queryset):
        active = list(queryset.filter(revoked_at__isnull=True))
        revoked = queryset.filter(pk__in=[key.pk for key in active]).update(revoked_at=timezone.now())
        for key in active:
            audit_record(request, AuditAction.KEY_REVOKED, org=key.org_id, target=key)
        self.message_user(request, f"Revoked {revoked} key(s). Requests with them now answer 401.")


@admin.register(Membership)
class MembershipAdmin(OrgScopedAdmin):
    """Operators give staff their orgs and roles here or with `manage.py add_member`; both go through
    orgs.members, which keeps the user's role groups in step."""

    roles = MANAGERS
    list_display = ("user", "org", "role", "created_at")
    ordering = ("org__name", "user__username")
    list_filter = ("role", "org")
    list_select_related = ("user", "org")
    search_fields = ("user__username", "user__email", "org__slug")
    fields = ("user", "org", "role")

    def get_readonly_fields(self, request, obj=None):
        return ("user", "org") if obj else ()  # another user or org is another membership

    def save_model(self, request, obj, form, change):
        obj.pk = membership_set(user=obj.user, org=obj.org, role=obj.role).pk
        audit_record(request, AuditAction.MEMBER_ADDED, org=obj.org, target=obj.user.get_username(), detail=obj.role)

    def delete_model(self, request, obj):
        memberships_remove([obj])

    def delete_queryset(self, request, queryset):
        memberships_remove(list(queryset.select_related("user")))


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnly, OrgScopedAdmin):
    """Who did what: managers see their orgs' entries, operators every org's; nobody edits them."""

    roles = MANAGERS
    list_display = ("at", "org", "actor", "action", "target", "detail", "address")
    list_filter = ("action", "org")
    list_select_related = ("org",)
    search_fields = ("actor", "target")
    date_hierarchy = "at"
