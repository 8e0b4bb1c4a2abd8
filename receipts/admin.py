"""Marking messages read in the staff inbox: the "mark read" action and button, the number's read
receipt policy (on open, on reply) and the typing bubble, added to the inbox's conversation and
message pages. Every receipt goes through receipts.services.reads, as the API's do."""

from collections.abc import Callable

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.urls import path, reverse

from core.envelopes import error_response
from core.errors import ApiError
from inbox.admin.conversations import ConversationAdmin
from inbox.admin.messages import MessageAdmin
from inbox.models import AuditAction, Conversation, Message, ReadReceiptPolicy, ReadVia
from orgs.audit import audit_record
from receipts.services import policies
from receipts.services.bulk import messages_mark_read

MARK_READ_PERMISSION = "inbox.mark_read"
ADMIN_READ_CONCURRENCY = 8


class MarkReadMixin(admin.ModelAdmin):
    """The "Mark selected inbound messages read" action: one receipt per conversation through
    receipts.services.reads, reported in the message bar. Needs the inbox.mark_read permission. The
    admin it extends says which messages a selection holds (`messages_of`)."""

    actions = ("mark_read",)
    messages_of: Callable[[QuerySet], QuerySet]  # the extended admin's: the messages a selection holds

    def has_mark_read_permission(self, request):
        return request.user.has_perm(MARK_READ_PERMISSION)

    @admin.action(description="Mark selected inbound messages read", permissions=("mark_read",))
    def mark_read(self, request, queryset):
        self.report(request, self.read(request, self.messages_of(queryset)))

    def read(self, request, selection):
        orgs = list(selection.order_by().values_list("org_id", flat=True).distinct())
        result = messages_mark_read(
            messages=selection, via=ReadVia.ADMIN, user=request.user, concurrency=ADMIN_READ_CONCURRENCY
        )
        if result.read:
            for org in orgs:  # an operator's selection may span orgs: each org's log has the action
                audit_record(request, AuditAction.MARK_READ, org=org, target=f"{result.conversations} conversation(s)",
                             detail=f"{result.read} message(s) from the admin")  # fmt: skip
        return result

    def report(self, request, result):
        self.message_user(request, result.summary(), messages.WARNING if result.failures else messages.SUCCESS)
        for label, meta_message in result.failures:
            self.message_user(request, f"Not read: {label}. WhatsApp said: {meta_message}", messages.ERROR)


POLICY_NOTES = {
    ReadReceiptPolicy.MANUAL: "Read receipts: manual. The contact sees their messages read when someone clicks "
    "Mark read.",
    ReadReceiptPolicy.ON_OPEN: "Read receipts: on open. Opening this thread told the contact their messages were read.",
    ReadReceiptPolicy.ON_REPLY: "Read receipts: on reply. Sending a reply first tells the contact their messages "
    "were read; opening the thread does not.",
}


class ReadingConversationAdmin(MarkReadMixin, ConversationAdmin):
    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(function)

        return [
            path("<int:object_id>/mark-read/", view(self.mark_read_view), name="inbox_conversation_mark_read"),
            path("<int:object_id>/opened/", view(self.opened_view), name="inbox_conversation_opened"),
            path("<int:object_id>/typing/", view(self.typing_view), name="inbox_conversation_typing"),
            *super().get_urls(),
        ]

    def thread_extras(self, request, conversation):
        number = conversation.phone_number
        can_mark_read = self.has_mark_read_permission(request)
        return {
            **super().thread_extras(request, conversation),
            "can_mark_read": can_mark_read,
            "policy": ReadReceiptPolicy(number.read_receipt_policy),
            "policy_note": POLICY_NOTES[number.read_receipt_policy],
            "mark_read_url": reverse("admin:inbox_conversation_mark_read", args=[conversation.pk]),
            "opened_url": reverse("admin:inbox_conversation_opened", args=[conversation.pk]),
            "typing_url": reverse("admin:inbox_conversation_typing", args=[conversation.pk])
            if number.typing_indicator and can_mark_read
            else "",
        }

    def before_reply(self, request, conversation):
        """The on_reply policy: the conversation is read before the reply is sent."""
        if conversation.phone_number.read_receipt_policy != ReadReceiptPolicy.ON_REPLY:
            return None

        def read_first():
            result = policies.conversation_read(conversation=conversation, user=request.user)
            if result.failures:
                self.report(request, result)

        return read_first

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
        result = policies.conversation_opened(conversation=conversation, user=request.user)
        if result is None:
            return JsonResponse({"read": 0})
        if result.read:
            audit_record(request, AuditAction.MARK_READ, org=conversation.org_id, target=conversation,
                         detail=f"{result.read} message(s), on opening the thread")  # fmt: skip
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
            shown = policies.agent_typing(conversation=conversation, user=request.user)
        except ApiError as error:
            return error_response(request, error)
        return JsonResponse({"typing": shown})


class ReadingMessageAdmin(MarkReadMixin, MessageAdmin):
    pass


for model, model_admin in ((Conversation, ReadingConversationAdmin), (Message, ReadingMessageAdmin)):
    admin.site.unregister(model)
    admin.site.register(model, model_admin)
