"""The staff inbox in the Django admin: conversations, their threads, and marking messages read
through the same receipts service the API uses. Every org-owned admin is an OrgScopedAdmin
(inbox/admin_scope.py): staff see their orgs' rows only. Secrets are write-only here."""

from functools import cached_property, reduce
from operator import or_

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Exists, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from inbox.admin_scope import MANAGERS, OrgScopedAdmin
from inbox.members import membership_set, memberships_remove
from inbox.models import (
    ApiKey,
    Conversation,
    Direction,
    Membership,
    Message,
    Org,
    PhoneNumber,
    ReadVia,
    Status,
    WebhookEvent,
)
from inbox.services import webhook_reprocess
from receipts.services import messages_mark_read

admin.site.site_header = "Kirim"
admin.site.site_title = "Kirim inbox"
admin.site.index_title = "WhatsApp inbox"
admin.site.site_url = "/v1/docs"  # "View site": Kirim has no public site; its API docs are the front page

MARK_READ_PERMISSION = "inbox.mark_read"
ADMIN_READ_CONCURRENCY = 8
THREAD_LENGTH = 200  # newest messages shown on a conversation page

TICKS = {
    Status.PENDING: ("🕓", "pending", "tick-grey"),
    Status.ACCEPTED: ("✓", "accepted by WhatsApp", "tick-grey"),
    Status.SENT: ("✓", "sent", "tick-grey"),
    Status.DELIVERED: ("✓✓", "delivered", "tick-grey"),
    Status.READ: ("✓✓", "read", "tick-blue"),
    Status.PLAYED: ("🎤", "played", "tick-blue"),
    Status.FAILED: ("⚠", "failed", "tick-red"),
    Status.RECEIVED: ("●", "unread", "tick-unread"),
}


def ticks(status):
    symbol, label, css = TICKS[status]
    return format_html('<span class="tick {}" title="{}">{}</span>', css, label, symbol)


class CappedCountPaginator(Paginator):
    """Counting millions of rows is the slow part of an admin list: count up to a cap instead."""

    CAP = 10_000

    @cached_property
    def count(self):
        return self.object_list[: self.CAP].count()


# --- Orgs, numbers and keys -------------------------------------------------------------------


@admin.register(Org)
class OrgAdmin(OrgScopedAdmin):
    org_path = "pk"
    ordering = ("name",)
    list_display = ("name", "slug", "external_id", "created_at")
    search_fields = ("name", "slug", "=external_id")
    prepopulated_fields = {"slug": ("name",)}  # noqa: RUF012 (Django's own API)
    readonly_fields = ("external_id", "created_at")


class PhoneNumberForm(forms.ModelForm):
    """The Meta access token is write-only: never rendered, kept when left blank on change."""

    access_token = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Write-only. Leave blank to keep the current token.",
    )

    class Meta:
        model = PhoneNumber
        fields = ("org", "phone_number_id", "display_phone_number", "waba_id", "access_token")

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


@admin.register(PhoneNumber)
class PhoneNumberAdmin(OrgScopedAdmin):
    roles = MANAGERS
    form = PhoneNumberForm
    list_display = ("display_phone_number", "phone_number_id", "org", "waba_id", "created_at")
    list_filter = ("org",)
    list_select_related = ("org",)
    search_fields = ("=phone_number_id", "display_phone_number")


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


# --- Marking read, shared by the message list, the conversation list and the thread page --------


class MarkReadMixin:
    """The "Mark selected inbound messages read" action: one receipt per conversation through
    receipts.services, reported in the message bar. Needs the inbox.mark_read permission."""

    actions = ("mark_read",)

    class Media:
        css = {"all": ("inbox/inbox.css",)}  # noqa: RUF012 (Django's own API)

    def has_mark_read_permission(self, request):
        return request.user.has_perm(MARK_READ_PERMISSION)

    def messages_of(self, queryset):
        raise NotImplementedError

    @admin.action(description="Mark selected inbound messages read", permissions=("mark_read",))
    def mark_read(self, request, queryset):
        self.report(request, self.read(request, self.messages_of(queryset)))

    def read(self, request, selection):
        return messages_mark_read(
            messages=selection, via=ReadVia.ADMIN, user=request.user, concurrency=ADMIN_READ_CONCURRENCY
        )

    def report(self, request, result):
        self.message_user(request, result.summary(), messages.WARNING if result.failures else messages.SUCCESS)
        for label, meta_message in result.failures:
            self.message_user(request, f"Not read: {label}. WhatsApp said: {meta_message}", messages.ERROR)


class UnreadFilter(admin.SimpleListFilter):
    title = "unread"
    parameter_name = "unread"

    def lookups(self, request, model_admin):
        return (("yes", "Has unread messages"), ("no", "All read"))

    def queryset(self, request, queryset):
        # EXISTS stops at the first unread row: faster here than filtering on the page's count
        # (92 vs 125 ms median at a million messages, bench/inbox.py).
        has_unread = Exists(Message.objects.unread_of_outer_conversation())
        if self.value() == "yes":
            return queryset.filter(has_unread)
        if self.value() == "no":
            return queryset.filter(~has_unread)
        return queryset


@admin.register(Conversation)
class ConversationAdmin(MarkReadMixin, OrgScopedAdmin):
    list_display = ("contact", "phone_number", "preview", "last_message_at", "unread_badge")
    list_display_links = ("contact",)
    list_filter = (("org", admin.RelatedOnlyFieldListFilter), "phone_number", "last_direction", UnreadFilter)
    search_fields = ("=contact_wa_id", "contact_name", "last_message_text")
    list_select_related = ("phone_number",)
    list_per_page = 50
    paginator = CappedCountPaginator
    show_full_result_count = False

    def get_queryset(self, request):
        # Unread counts for the rows on the page only: a correlated count over the partial index
        # message_unread_inbound, evaluated after the LIMIT.
        unread = (
            Message.objects.unread_of_outer_conversation()
            .order_by()
            .values("contact_wa_id")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return super().get_queryset(request).annotate(unread=Coalesce(Subquery(unread), 0))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="contact", ordering="contact_name")
    def contact(self, conversation):
        key = conversation.contact_wa_id
        shown = f"+{key}" if key.isdigit() else key  # a phone number, or a user id or group id
        return format_html("<strong>{}</strong><br><small>{}</small>", conversation.contact_name or "—", shown)

    @admin.display(description="last message")
    def preview(self, conversation):
        arrow = "←" if conversation.last_direction == Direction.INBOUND else "→"
        return f"{arrow} {conversation.last_message_text[:80]}"

    @admin.display(description="unread", ordering="unread")
    def unread_badge(self, conversation):
        if not conversation.unread:
            return ""
        return format_html('<span class="unread-badge">{}</span>', conversation.unread)

    def messages_of(self, queryset):
        keys = queryset.values_list("phone_number_id", "contact_wa_id")
        return Message.objects.filter(
            reduce(or_, (Q(phone_number_id=p, contact_wa_id=c) for p, c in keys), Q(pk__in=[]))
        )

    def get_urls(self):
        return [
            path("<int:object_id>/mark-read/", self.admin_site.admin_view(self.mark_read_view), name="inbox_conversation_mark_read"),
            *super().get_urls(),
        ]  # fmt: skip

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """A conversation's page is its thread, shown as a chat."""
        conversation = self.get_object(request, object_id)
        if not self.has_view_permission(request, conversation):
            raise PermissionDenied
        thread = list(reversed(conversation.messages().order_by("-timestamp", "-pk")[:THREAD_LENGTH]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": str(conversation.contact_name or conversation.contact_wa_id),
            "conversation": conversation,
            "thread": [(m, ticks(m.status)) for m in thread],
            "can_mark_read": self.has_mark_read_permission(request),
            "has_unread": conversation.unread > 0,
            "mark_read_url": reverse("admin:inbox_conversation_mark_read", args=[conversation.pk]),
        }
        return TemplateResponse(request, "admin/inbox/conversation/thread.html", context)

    def mark_read_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_mark_read_permission(request):
            raise PermissionDenied
        conversation = self.get_object(request, object_id)
        self.report(request, self.read(request, conversation.messages()))
        return HttpResponseRedirect(reverse("admin:inbox_conversation_change", args=[conversation.pk]))


@admin.register(Message)
class MessageAdmin(MarkReadMixin, OrgScopedAdmin):
    list_display = (
        "external_id",
        "contact",
        "direction",
        "status_ticks",
        "type",
        "short_text",
        "timestamp",
        "read_via",
    )
    # No filter on `type`: its choices would be a DISTINCT over the whole table on every page load.
    list_filter = ("direction", "status", "phone_number", "read_via")
    search_fields = ("=contact_wa_id", "=wamid", "=external_id", "contact_name", "text")
    list_select_related = ("phone_number",)
    list_per_page = 100
    paginator = CappedCountPaginator
    show_full_result_count = False
    readonly_fields = tuple(f.name for f in Message._meta.fields)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="contact")
    def contact(self, message):
        return message.contact_name or message.contact_wa_id

    @admin.display(description="status", ordering="status")
    def status_ticks(self, message):
        return format_html("{} {}", ticks(message.status), message.status)

    @admin.display(description="text")
    def short_text(self, message):
        return message.text[:80]

    def messages_of(self, queryset):
        return queryset


# --- Who works in which org --------------------------------------------------------------------


@admin.register(Membership)
class MembershipAdmin(OrgScopedAdmin):
    """Operators give staff their orgs and roles here or with `manage.py add_member`; both go through
    inbox.members, which keeps the user's role groups in step."""

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


# --- Webhook events, for operators ------------------------------------------------------------


class FailedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (("failed", "Failed (to reprocess)"), ("applied", "Applied"))

    def queryset(self, request, queryset):
        if self.value() == "failed":
            return queryset.failed()
        if self.value() == "applied":
            return queryset.filter(error="", processed_at__isnull=False)
        return queryset


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    """Every org's webhooks in one list: for the operators running Kirim (superusers), not for staff."""

    list_display = ("id", "received_at", "processed_at", "attempts", "failure")
    list_filter = (FailedFilter,)
    date_hierarchy = "received_at"
    actions = ("reprocess",)
    readonly_fields = ("received_at", "processed_at", "attempts", "error", "failed_items", "body")

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # `purge_expired` keeps them for their retention

    def get_queryset(self, request):
        return super().get_queryset(request).defer("body")

    @admin.display(description="not applied")
    def failure(self, event):
        if event.error:
            return event.error[:120]
        return "" if event.processed_at else "not processed"

    @admin.action(description="Reprocess selected webhook events")
    def reprocess(self, request, queryset):
        if not self.has_module_permission(request):
            raise PermissionDenied
        outcome = webhook_reprocess(list(queryset.values_list("pk", flat=True)))
        still_failing = {pk: failed for pk, failed in outcome.items() if failed is None or failed}
        self.message_user(
            request, f"Reprocessed {len(outcome)} event(s); {len(outcome) - len(still_failing)} applied whole."
        )
        for pk, failed in still_failing.items():
            reason = "could not be applied (logged)" if failed is None else "; ".join(f["reason"] for f in failed)
            self.message_user(request, f"Event {pk} still fails: {reason}", messages.WARNING)
