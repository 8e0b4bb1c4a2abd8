"""Conversations: the inbox list, each thread as a chat with its reply box (their live updates:
live.py; the team's pages: team.py; what the thread shows and takes: thread.py)."""

import secrets

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from core.errors import ApiError
from inbox.admin.display import CappedCountPaginator, unread_badge
from inbox.admin.live import LiveConversations, live_cursor
from inbox.admin.team import REPORTS_PERMISSION, ViewFilter
from inbox.admin.thread import reply_of, thread_items
from inbox.models import (
    AuditAction,
    Contact,
    Conversation,
    Direction,
    Message,
    of_conversations,
)
from inbox.services import replies, teaminbox
from inbox.services.blocking import users_block
from orgs.audit import audit_record

REPLY_PERMISSION = "inbox.reply"
BLOCK_PERMISSION = "inbox.block"
THREAD_LENGTH = 200  # newest messages shown on a conversation page
POLL_SECONDS = 3  # how often an open inbox or thread asks what changed


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
class ConversationAdmin(LiveConversations):
    list_display = (
        "contact", "phone_number", "preview", "last_message_at", "unread_badge", "state_shown", "assignee_name",
        "label_chips",
    )  # fmt: skip
    list_display_links = ("contact",)
    list_filter = (
        ViewFilter, "labels", ("org", admin.RelatedOnlyFieldListFilter), "phone_number", "last_direction", UnreadFilter
    )  # fmt: skip
    search_fields = ("=contact_wa_id", "contact_name")  # and every message's text: get_search_results
    search_help_text = "A contact's number or name, or words from any of their messages."
    ordering = ("-last_message_at", "-id")  # newest activity first: the conversation_recent index
    list_select_related = ("phone_number", "assignee")
    list_per_page = 50
    paginator = CappedCountPaginator
    show_full_result_count = False

    class Media:
        css = {"all": ("inbox/inbox.css",)}  # noqa: RUF012 (Django's own API)

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
        return super().get_queryset(request).annotate(unread=Coalesce(Subquery(unread), 0)).prefetch_related("labels")

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
            path("<int:object_id>/reply/", view(self.reply_view), name="inbox_conversation_reply"),
            *self.team_urls(),
            path("<int:object_id>/block/", view(self.block_view), name="inbox_conversation_block"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        live = {"live_url": reverse("admin:inbox_conversation_live"), "live_cursor": live_cursor(timezone.now()),
                "poll_seconds": POLL_SECONDS,
                "reports_url": reverse("admin:inbox_conversation_reports") if request.user.has_perm(REPORTS_PERMISSION)
                else ""}  # fmt: skip
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
            "thread": thread_items(conversation, thread),
            "has_unread": conversation.unread > 0,
            "live_url": reverse("admin:inbox_conversation_thread_live", args=[conversation.pk]),
            "live_cursor": cursor,
            "poll_seconds": POLL_SECONDS,
            "can_reply": can_reply,
            "window": window,
            "templates": [(t, t.parameters(), t.render({})) for t in templates],
            "reply_url": reverse("admin:inbox_conversation_reply", args=[conversation.pk]),
            # A fresh token per rendered form: submitting the same form twice sends once.
            "reply_token": secrets.token_urlsafe(18),
            "max_text": replies.MAX_TEXT,
            **self.team_context(request, conversation),
            "contact": Contact.objects.filter(phone_number=number, contact_wa_id=conversation.contact_wa_id).first(),
            "can_block": request.user.has_perm(BLOCK_PERMISSION),
            "block_url": reverse("admin:inbox_conversation_block", args=[conversation.pk]),
            **self.thread_extras(request, conversation),
        }
        return TemplateResponse(request, "admin/inbox/conversation/thread.html", context)

    def thread_extras(self, request, conversation):
        """More for the thread page's template, where another app extends this page (receipts.admin)."""
        return {}

    def before_reply(self, request, conversation):
        """What to do once before a reply is sent (not again on a double submit), where another app
        extends this page; None: nothing."""
        return

    def reply_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_reply_permission(request):
            raise PermissionDenied
        conversation = self.get_object(request, object_id)
        thread_url = reverse("admin:inbox_conversation_change", args=[conversation.pk])
        try:
            outcome = replies.conversation_reply(
                conversation=conversation, token=request.POST.get("token", ""),
                before_send=self.before_reply(request, conversation), **reply_of(request, conversation),
            )  # fmt: skip
        except ApiError as error:  # refused before anything was sent: say why
            self.message_user(request, f"Not sent: {error.message}", messages.ERROR)
            return HttpResponseRedirect(thread_url)
        if outcome.message is not None and not outcome.replayed:
            audit_record(request, AuditAction.REPLY, org=conversation.org_id, target=outcome.message)
        if outcome.message is not None:  # the agent's answer: the first of the cycle is its first response
            teaminbox.first_response_record(conversation=conversation, user=request.user, at=outcome.message.created_at)
        if outcome.message is None:
            self.message_user(request, f"Not sent. WhatsApp said: {outcome.error}", messages.ERROR)
        elif outcome.replayed:
            self.message_user(request, "That reply was already sent; it was not sent again.", messages.WARNING)
        return HttpResponseRedirect(thread_url)

    def block_view(self, request, object_id):
        """Block or unblock the conversation's contact through Meta (only one who wrote in the last 24
        hours can be blocked: Meta says so, user by user)."""
        conversation = self.get_object(request, object_id)  # another org's: 404, as a missing one
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm(BLOCK_PERMISSION):
            raise PermissionDenied
        block = request.POST.get("action") != "unblock"
        try:
            _, answer = users_block(conversation.phone_number, [{"user": conversation.contact_wa_id}], block=block)
        except ApiError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            failures = (answer.get("block_users") or {}).get("failed_users") or []
            for failure in failures:
                told = "; ".join(str(e.get("message", "")) for e in failure.get("errors") or [])
                self.message_user(request, f"Meta did not {'block' if block else 'unblock'}: {told}", messages.ERROR)
            if not failures:
                audit_record(request, AuditAction.CONTACT_BLOCKED, org=conversation.org_id,
                             target=conversation.contact_wa_id, detail="blocked" if block else "unblocked")  # fmt: skip
                self.message_user(request, f"{conversation.contact_shown} {'blocked' if block else 'unblocked'}.")
        return HttpResponseRedirect(reverse("admin:inbox_conversation_change", args=[conversation.pk]))
