"""Live updates: what changed since a page's cursor, as small JSON answers the pages poll for."""

from collections.abc import Callable
from datetime import datetime, timedelta

from django.db.models import Max, Q
from django.http import JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from core.envelopes import error_response
from core.errors import ApiError, InvalidField
from inbox.admin.display import ticks, unread_badge
from inbox.admin.team import TeamInbox, ViewFilter, view_q
from inbox.admin.thread import media_url
from inbox.models import Conversation, Message, of_conversations
from inbox.services import replies, teaminbox

# Rows are stamped with `updated_at` before their transaction commits, so a row can become visible
# after a later-stamped one was already reported: every poll looks this far behind its cursor again.
LIVE_OVERLAP = timedelta(seconds=10)
LIVE_MAX_CONVERSATIONS = 100  # more changed at once than this: the inbox page asks for a reload


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


def live_message(message, media_url=""):
    return {
        "id": message.external_id,
        "direction": message.direction,
        "status": message.status,
        "type": message.type,
        "media_url": media_url,
        "text": message.text,
        "sent_from_app": message.sent_from_app,
        "deleted": message.deleted_at is not None,  # its content is gone: the open page drops it too
        "time": date_format(timezone.localtime(message.timestamp), "d M H:i"),
        "tick": ticks(message.status),
    }


def live_note(note):
    return {
        "id": note.external_id,
        "author": note.author.username if note.author_id else "",
        "body": note.body,
        "time": date_format(timezone.localtime(note.created_at), "d M H:i"),
    }


def label_filter(request):
    """The label the live page's list is filtered by, as its list filter names it."""
    label = request.GET.get("labels__id__exact", "")
    return {"labels__id": label} if label.isdigit() else {}


class LiveConversations(TeamInbox):
    """ConversationAdmin's live answers, on top of its team pages: the inbox's and an open thread's
    changes since the page's cursor, as small JSON answers, each row as the list's columns show it."""

    contact: Callable[[Conversation], str]  # ConversationAdmin's columns
    preview: Callable[[Conversation], str]

    @staticmethod
    def changes_since(request, queryset):
        """`queryset` narrowed to rows changed since the request's cursor, looking LIVE_OVERLAP
        further back; and that cursor. InvalidField for a bad one."""
        since = parse_cursor(request.GET.get("since", ""))
        return queryset.filter(updated_at__gte=since - LIVE_OVERLAP), since

    def inbox_live_view(self, request):
        teaminbox.presence_record(request.user)  # an open inbox page polls: its agent is present
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
        # And the conversations the team changed (assigned, resolved, labelled, noted), from their index.
        team_changed = list(
            self.get_queryset(request).filter(team_changed_at__gte=since - LIVE_OVERLAP)
            .order_by("-team_changed_at").values_list("pk", "team_changed_at")[: LIVE_MAX_CONVERSATIONS + 1]
        )  # fmt: skip
        cursor = max([since, *(t["changed"] for t in touched), *(changed_at for _, changed_at in team_changed)])
        keys = [(t["phone_number_id"], t["contact_wa_id"]) for t in touched]
        changed_rows = self.get_queryset(request).filter(
            of_conversations(keys) | Q(pk__in=[pk for pk, _ in team_changed])
        )
        rows = list(changed_rows.select_related("phone_number", "assignee").order_by(*self.get_ordering(request)))
        # Whether each still belongs in the page's view (and label), which the page asks with its own query.
        in_view = set(
            self.get_queryset(request).filter(pk__in=[c.pk for c in rows]).filter(view_q(request.GET.get("view")
            or ViewFilter.DEFAULT, request.user)).filter(**label_filter(request)).values_list("pk", flat=True)
        )  # fmt: skip
        return JsonResponse({
            "cursor": live_cursor(cursor),
            "reload": max(len(touched), len(team_changed)) > LIVE_MAX_CONVERSATIONS,
            "conversations": [self.live_row(c) | {"in_view": c.pk in in_view} for c in rows],
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
            "state": self.state_shown(conversation),
            "assignee": self.assignee_name(conversation),
            "labels": self.label_chips(conversation),
        }

    def thread_live_view(self, request, object_id):
        """The open thread's messages changed since the cursor (new ones, moved ticks, reads), and
        whether WhatsApp's 24-hour window is open now."""
        conversation = self.get_object(request, object_id)
        teaminbox.presence_record(request.user)
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
            "messages": [live_message(m, media_url(conversation, m)) for m in changed],
            "notes": [live_note(n) for n in conversation.notes.filter(created_at__gte=since - LIVE_OVERLAP)
                      .select_related("author").order_by("created_at")],
            "state": self.state_shown(conversation),
            "assignee": self.assignee_name(conversation),
        })  # fmt: skip
