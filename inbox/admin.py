"""The staff inbox in the Django admin: conversations, their threads, and marking messages read
through the same receipts service the API uses. Every org-owned admin is an OrgScopedAdmin
(inbox/admin_scope.py): staff see their orgs' rows only. Secrets are write-only here."""

import secrets
from datetime import datetime, timedelta
from functools import cached_property

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Exists, Max, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from inbox import replies
from inbox.admin_scope import MANAGERS, OrgScopedAdmin
from inbox.members import membership_set, memberships_remove
from inbox.models import (
    ApiKey,
    Conversation,
    Direction,
    Membership,
    Message,
    MessageTemplate,
    Org,
    PhoneNumber,
    ReadReceiptPolicy,
    ReadVia,
    Status,
    WebhookEvent,
    of_conversations,
)
from inbox.numbers import phone_number_confirm
from inbox.services import webhook_reprocess
from kirim.errors import ApiError, InvalidField, error_response
from receipts.services import messages_mark_read

admin.site.site_header = "Kirim"
admin.site.site_title = "Kirim inbox"
admin.site.index_title = "WhatsApp inbox"
admin.site.site_url = "/v1/docs"  # "View site": Kirim has no public site; its API docs are the front page

MARK_READ_PERMISSION = "inbox.mark_read"
REPLY_PERMISSION = "inbox.reply"
ADMIN_READ_CONCURRENCY = 8
CONNECTING_FIELDS = ("phone_number_id", "waba_id", "access_token")  # a change of any: Meta confirms again
THREAD_LENGTH = 200  # newest messages shown on a conversation page
POLL_SECONDS = 3  # how often an open inbox or thread asks what changed
# Rows are stamped with `updated_at` before their transaction commits, so a row can become visible
# after a later-stamped one was already reported: every poll looks this far behind its cursor again.
LIVE_OVERLAP = timedelta(seconds=10)
LIVE_MAX_CONVERSATIONS = 100  # more changed at once than this: the inbox page asks for a reload

TICKS = {
    Status.PENDING: ("🕓", "pending", "tick-grey"),
    Status.UNCONFIRMED: ("🕓", "unconfirmed: Meta's answer was lost", "tick-grey"),
    Status.ACCEPTED: ("✓", "accepted by WhatsApp", "tick-grey"),
    Status.SENT: ("✓", "sent", "tick-grey"),
    Status.DELIVERED: ("✓✓", "delivered", "tick-grey"),
    Status.READ: ("✓✓", "read", "tick-blue"),
    Status.PLAYED: ("🎤", "played", "tick-blue"),
    Status.FAILED: ("⚠", "failed", "tick-red"),
    Status.RECEIVED: ("●", "unread", "tick-unread"),
}


def ticks(status):
    """The tick as WhatsApp shows it; screen readers hear the status in words instead of the symbol."""
    symbol, label, css = TICKS[status]
    return format_html(
        '<span class="tick {}" title="{}"><span aria-hidden="true">{}</span><span class="visually-hidden">{}</span>'
        "</span>",
        css, label, symbol, label,
    )  # fmt: skip


def unread_badge(count):
    if not count:
        return ""
    return format_html('<span class="unread-badge" title="{} unread">{}</span>', count, count)


class CappedCountPaginator(Paginator):
    """Counting millions of rows is the slow part of an admin list: count up to a cap instead."""

    CAP = 10_000

    @cached_property
    def count(self):
        return self.object_list[: self.CAP].count()  # type: ignore[attr-defined]  # the admin pages a QuerySet


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
    """The Meta access token is write-only: never rendered, kept when left blank on change. A new
    number, or a new id, WABA or token for one, is saved only with Meta's confirmation that the token
    can act for the number (PhoneNumberAdmin asks Meta before the form runs: `confirmation`)."""

    confirmation = None  # inbox.numbers.Confirmation, or the ApiError that refused one

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

    list_display = ("display_phone_number", "phone_number_id", "org", "waba_id", "read_receipt_policy", "created_at")
    list_filter = ("org", "read_receipt_policy")
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

    list_display = ("name", "language", "status", "category", "waba_id", "org", "synced_at")
    list_filter = ("status", "category", "org")
    search_fields = ("name",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


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


class MarkReadMixin(admin.ModelAdmin):
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
    search_fields = ("=contact_wa_id", "contact_name")  # and every message's text: get_search_results
    search_help_text = "A contact's number or name, or words from any of their messages."
    ordering = ("-last_message_at", "-id")  # newest activity first: the conversation_recent index
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

    def get_search_results(self, request, queryset, search_term):
        """The number and name as search_fields say, or the text of any message of the conversation.
        The conversations with a matching message are found in one uncorrelated subquery (PostgreSQL
        runs it once, through the trigram index message_text_trgm), not one probe per conversation."""
        by_fields, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if not term:
            return by_fields, may_have_duplicates
        in_a_message = Message.objects.filter(
            phone_number_id=OuterRef("phone_number_id"), contact_wa_id=OuterRef("contact_wa_id"), text__icontains=term
        )
        with_a_match = Conversation.objects.filter(Exists(in_a_message)).values("pk")
        return by_fields | queryset.filter(pk__in=with_a_match), may_have_duplicates

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="contact", ordering="contact_name")
    def contact(self, conversation):
        return format_html(
            "<strong>{}</strong><br><small>{}</small>", conversation.contact_name or "—", conversation.contact_shown
        )

    @admin.display(description="last message")
    def preview(self, conversation):
        arrow = "←" if conversation.last_direction == Direction.INBOUND else "→"
        return f"{arrow} {conversation.last_message_text[:80]}"

    @admin.display(description="unread", ordering="unread")
    def unread_badge(self, conversation):
        return unread_badge(conversation.unread)

    def messages_of(self, queryset):
        return Message.objects.filter(of_conversations(queryset.values_list("phone_number_id", "contact_wa_id")))

    def has_reply_permission(self, request):
        return request.user.has_perm(REPLY_PERMISSION)

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(function)

        return [
            path("live/", view(self.inbox_live_view), name="inbox_conversation_live"),
            path("<int:object_id>/live/", view(self.thread_live_view), name="inbox_conversation_thread_live"),
            path("<int:object_id>/mark-read/", view(self.mark_read_view), name="inbox_conversation_mark_read"),
            path("<int:object_id>/opened/", view(self.opened_view), name="inbox_conversation_opened"),
            path("<int:object_id>/reply/", view(self.reply_view), name="inbox_conversation_reply"),
            path("<int:object_id>/typing/", view(self.typing_view), name="inbox_conversation_typing"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        live = {"live_url": reverse("admin:inbox_conversation_live"), "live_cursor": live_cursor(timezone.now()),
                "poll_seconds": POLL_SECONDS}  # fmt: skip
        return super().changelist_view(request, {**(extra_context or {}), **live})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """A conversation's page is its thread, shown as a chat, with the reply box under it."""
        conversation = self.get_object(request, object_id)
        if not self.has_view_permission(request, conversation):
            raise PermissionDenied
        cursor = live_cursor(timezone.now())  # before the read: nothing committed after it is missed
        thread = list(reversed(conversation.messages().order_by("-timestamp", "-pk")[:THREAD_LENGTH]))
        number = conversation.phone_number
        can_reply = self.has_reply_permission(request)
        window = replies.reply_window(conversation) if can_reply else None
        templates = replies.approved_templates(number) if can_reply else []
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": str(conversation.contact_name or conversation.contact_wa_id),
            "conversation": conversation,
            "thread": [(m, ticks(m.status)) for m in thread],
            "can_mark_read": self.has_mark_read_permission(request),
            "has_unread": conversation.unread > 0,
            "policy": ReadReceiptPolicy(number.read_receipt_policy),
            "policy_note": POLICY_NOTES[number.read_receipt_policy],
            "mark_read_url": reverse("admin:inbox_conversation_mark_read", args=[conversation.pk]),
            "opened_url": reverse("admin:inbox_conversation_opened", args=[conversation.pk]),
            "live_url": reverse("admin:inbox_conversation_thread_live", args=[conversation.pk]),
            "live_cursor": cursor,
            "poll_seconds": POLL_SECONDS,
            "can_reply": can_reply,
            "window": window,
            "templates": [(t, t.parameters(), t.render({})) for t in templates],
            "reply_url": reverse("admin:inbox_conversation_reply", args=[conversation.pk]),
            "typing_url": reverse("admin:inbox_conversation_typing", args=[conversation.pk])
            if number.typing_indicator and self.has_mark_read_permission(request)
            else "",
            # A fresh token per rendered form: submitting the same form twice sends once.
            "reply_token": secrets.token_urlsafe(18),
            "max_text": replies.MAX_TEXT,
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

    def opened_view(self, request, object_id):
        """The thread page calls this once it has opened: the on_open policy's receipt, if any."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        conversation = self.get_object(request, object_id)
        if not self.has_mark_read_permission(request):
            return JsonResponse({"read": 0, "note": "You may not mark messages read."})
        result = replies.conversation_opened(conversation=conversation, user=request.user)
        if result is None:
            return JsonResponse({"read": 0})
        return JsonResponse({"read": result.read, "failures": [message for _, message in result.failures]})

    def typing_view(self, request, object_id):
        """The reply box calls this while an agent writes (at most every 20 s): the typing bubble,
        on numbers that show it. It reads the conversation too, so it needs both permissions."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not (self.has_reply_permission(request) and self.has_mark_read_permission(request)):
            raise PermissionDenied
        conversation = self.get_object(request, object_id)
        try:
            shown = replies.agent_typing(conversation=conversation, user=request.user)
        except ApiError as error:
            return error_response(request, error)
        return JsonResponse({"typing": shown})

    def reply_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_reply_permission(request):
            raise PermissionDenied
        conversation = self.get_object(request, object_id)
        thread_url = reverse("admin:inbox_conversation_change", args=[conversation.pk])
        try:
            outcome = replies.conversation_reply(
                conversation=conversation, user=request.user, token=request.POST.get("token", ""),
                **reply_of(request),
            )  # fmt: skip
        except ApiError as error:  # refused before anything was sent: say why
            self.message_user(request, f"Not sent: {error.message}", messages.ERROR)
            return HttpResponseRedirect(thread_url)
        if outcome.read is not None and outcome.read.failures:
            self.report(request, outcome.read)
        if outcome.message is None:
            self.message_user(request, f"Not sent. WhatsApp said: {outcome.error}", messages.ERROR)
        elif outcome.replayed:
            self.message_user(request, "That reply was already sent; it was not sent again.", messages.WARNING)
        return HttpResponseRedirect(thread_url)

    # --- Live: what changed since the page's cursor, as small JSON answers ------------------------

    @staticmethod
    def changes_since(request, queryset):
        """`queryset` narrowed to rows changed since the request's cursor, looking LIVE_OVERLAP
        further back; and that cursor. InvalidField for a bad one."""
        since = parse_cursor(request.GET.get("since", ""))
        return queryset.filter(updated_at__gte=since - LIVE_OVERLAP), since

    def inbox_live_view(self, request):
        try:
            return self.inbox_changes(request)
        except ApiError as error:
            return error_response(request, error)

    def inbox_changes(self, request):
        """Conversations with changes (new messages, ticks, reads) since the cursor, newest activity
        first: their preview and unread count. The changed rows come from the index message_changed."""
        changed, since = self.changes_since(request, self.related_choices(request, Message))
        touched = list(
            changed.order_by()
            .values("phone_number_id", "contact_wa_id")
            .annotate(changed=Max("updated_at"))
            .order_by("-changed")[: LIVE_MAX_CONVERSATIONS + 1]
        )
        cursor = max([since, *(t["changed"] for t in touched)])
        keys = [(t["phone_number_id"], t["contact_wa_id"]) for t in touched]
        rows = self.get_queryset(request).filter(of_conversations(keys)).select_related("phone_number")
        rows = rows.order_by(*self.ordering)
        return JsonResponse({
            "cursor": live_cursor(cursor),
            "reload": len(touched) > LIVE_MAX_CONVERSATIONS,
            "conversations": [self.live_row(c) for c in rows],
        })  # fmt: skip

    def live_row(self, conversation):
        return {
            "id": conversation.pk,
            "url": reverse("admin:inbox_conversation_change", args=[conversation.pk]),
            "contact": self.contact(conversation),
            "phone_number": str(conversation.phone_number),
            "preview": self.preview(conversation),
            "last_message_at": date_format(timezone.localtime(conversation.last_message_at), "DATETIME_FORMAT"),
            "last_message_ts": conversation.last_message_at.isoformat(),
            "unread": conversation.unread,
            "unread_badge": unread_badge(conversation.unread),
        }

    def thread_live_view(self, request, object_id):
        """The open thread's messages changed since the cursor (new ones, moved ticks, reads), and
        whether WhatsApp's 24-hour window is open now."""
        conversation = self.get_object(request, object_id)
        try:
            changed, since = self.changes_since(request, conversation.messages())
        except ApiError as error:
            return error_response(request, error)
        changed = list(changed.order_by("timestamp", "pk"))
        window = replies.reply_window(conversation)
        return JsonResponse({
            "cursor": live_cursor(max([since, *(m.updated_at for m in changed)])),
            "window_open": window.is_open,
            "window_reason": window.reason(),
            "unread": conversation.unread,
            "messages": [live_message(m) for m in changed],
        })  # fmt: skip


POLICY_NOTES = {
    ReadReceiptPolicy.MANUAL: "Read receipts: manual. The contact sees their messages read when someone clicks "
    "Mark read.",
    ReadReceiptPolicy.ON_OPEN: "Read receipts: on open. Opening this thread told the contact their messages were read.",
    ReadReceiptPolicy.ON_REPLY: "Read receipts: on reply. Sending a reply first tells the contact their messages "
    "were read; opening the thread does not.",
}


def reply_of(request):
    """The reply form's fields as conversation_reply takes them: a text, or a template and its values."""
    template_id = request.POST.get("template")
    if not template_id:
        return {"text": request.POST.get("text", "")}
    prefix = f"param-{template_id}-"  # param-<template>-<component>-<placeholder>
    values = {
        tuple(field.removeprefix(prefix).split("-", 1)): value
        for field, value in request.POST.items()
        if field.startswith(prefix)
    }
    return {"template_id": template_id, "values": values}


def live_cursor(moment):
    return moment.isoformat()


def parse_cursor(value):
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidField("since", "`since` takes the cursor of the previous answer.") from None
    if timezone.is_naive(moment):
        raise InvalidField("since", "`since` takes the cursor of the previous answer.")
    return moment


def live_message(message):
    return {
        "id": message.external_id,
        "direction": message.direction,
        "status": message.status,
        "type": message.type,
        "text": message.text,
        "time": date_format(timezone.localtime(message.timestamp), "d M H:i"),
        "tick": ticks(message.status),
    }


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
            return queryset.applied()
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
        return event.failure[:120]

    @admin.action(description="Reprocess selected webhook events")
    def reprocess(self, request, queryset):
        if not self.has_module_permission(request):
            raise PermissionDenied
        reprocessed, still_failing = webhook_reprocess(list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request, f"Reprocessed {reprocessed} event(s); {reprocessed - len(still_failing)} applied whole."
        )
        for pk, reason in still_failing.items():
            self.message_user(request, f"Event {pk} still fails: {reason}", messages.WARNING)
