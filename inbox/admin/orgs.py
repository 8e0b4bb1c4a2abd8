"""Orgs, their API keys (shown once, then only revoked) and their staff members."""

from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils import timezone

from inbox.models import (
    ApiKey,
    Membership,
    Org,
)
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
    class Meta:
        model = ApiKey
        fields = ("org", "name", "expires_at")


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
    actions = ("revoke",)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ApiKeyForm.Meta.fields  # a new key: nothing to show but what the form asks
        return ("external_id", "display_prefix", *ApiKeyForm.Meta.fields, "created_at", "last_used_at", "revoked_at")

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        key, secret = ApiKey.issue(org=obj.org, name=obj.name, expires_at=obj.expires_at)
        obj.pk, obj.external_id = key.pk, key.external_id
        request._issued_api_key = secret

    def response_add(self, request, obj, post_url_continue=None):
        return TemplateResponse(
            request,
            "admin/inbox/apikey/issued.html",
            {**self.admin_site.each_context(request), "title": "API key created", "key": obj,
             "secret": request._issued_api_key, "opts": self.opts},
        )  # fmt: skip

    @admin.action(description="Revoke selected API keys", permissions=("change",))
    def revoke(self, request, queryset):
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
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

    def delete_model(self, request, obj):
        memberships_remove([obj])

    def delete_queryset(self, request, queryset):
        memberships_remove(list(queryset.select_related("user")))
