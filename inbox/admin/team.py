"""The team inbox in the admin: the views agents land on (mine, unassigned, open), assignment, states,
labels, private notes, saved replies, media in the thread, the contact page and the managers' reports.
ConversationAdmin (inbox/admin/conversations.py) takes its pages from TeamInbox; every change goes
through inbox.services.teaminbox, as the API's do. The labels' and saved replies' own pages: labels.py."""

from collections.abc import Callable

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html

from core.errors import ApiError, InvalidField
from inbox.admin.labels import label_chips
from inbox.admin.thread import contact_of, media_id_of, safe_filename
from inbox.models import MEDIA_TYPES, ConversationState, Label, SavedReply
from inbox.services import reports, teaminbox
from inbox.services.media import media_describe
from inbox.services.teaminbox import Actor
from meta import graph as meta_graph
from orgs.models import Org
from orgs.ratelimit import client_address
from orgs.scope import OrgScopedAdmin

MANAGE_PERMISSION = "inbox.manage"
REPORTS_PERMISSION = "inbox.view_reports"
TEAM_ACTIONS = ("assign_to_me", "unassign", "resolve", "reopen")


class ViewFilter(admin.SimpleListFilter):
    """The inbox's views. Without one chosen, "Open": what needs the team now, where agents land."""

    title = "view"
    parameter_name = "view"
    DEFAULT = "open"

    def lookups(self, request, model_admin):
        return (
            ("mine", "Mine"),
            ("unassigned", "Unassigned"),
            ("open", "Open"),
            ("pending", "Pending"),
            ("snoozed", "Snoozed"),
            ("resolved", "Resolved"),
            ("all", "All"),
        )

    def value(self):
        return super().value() or self.DEFAULT

    def choices(self, changelist):
        # No "All" of Django's: "all" is one of the views, and no choice means the default one.
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        return queryset.filter(view_q(self.value(), request.user))


def view_q(view, user, now=None):
    """The filter of one of the inbox's views, for `user`."""
    now = now or timezone.now()
    if view == "mine":
        return Q(assignee=user) & teaminbox.not_resolved()
    if view == "unassigned":
        return Q(assignee__isnull=True) & (teaminbox.open_now(now) | Q(state=ConversationState.PENDING))
    if view in ConversationState.values:
        return teaminbox.state_q(view, now)
    return Q()


def actor_of(request):
    return Actor(user=request.user, address=client_address(request))


class TeamInbox(OrgScopedAdmin):
    """ConversationAdmin's team pages and actions; needs the inbox.manage permission to change."""

    has_reply_permission: Callable[[HttpRequest], bool]  # ConversationAdmin's

    def has_manage_permission(self, request):
        return request.user.has_perm(MANAGE_PERMISSION)

    # --- The list: who has it, where it stands, its labels ---------------------------------------

    @admin.display(description="assignee", ordering="assignee__username")
    def assignee_name(self, conversation):
        return conversation.assignee.username if conversation.assignee_id else "—"

    @admin.display(description="state", ordering="state")
    def state_shown(self, conversation):
        state = teaminbox.shown_state(conversation)
        if state == ConversationState.SNOOZED:
            return format_html(
                '<span class="state state-snoozed">snoozed until {}</span>',
                timezone.localtime(conversation.snoozed_until).strftime("%d %b %H:%M"),
            )
        return format_html('<span class="state state-{}">{}</span>', state, state)

    @admin.display(description="labels")
    def label_chips(self, conversation):
        return label_chips(conversation.labels.all())

    def _each(self, request, queryset, change, done):
        count = 0
        for conversation in queryset.select_related("phone_number"):
            change(conversation)
            count += 1
        self.message_user(request, f"{count} conversation(s) {done}.", messages.SUCCESS)

    def get_actions(self, request):
        # Added here, not in `actions`: the admins that extend this one (receipts') declare their own.
        actions = super().get_actions(request)
        if self.has_manage_permission(request):
            for name in TEAM_ACTIONS:
                action = self.get_action(name)  # (function, name, description), every one defined below
                if action is not None:
                    actions[name] = action
        return actions

    @admin.action(description="Assign to me", permissions=("manage",))
    def assign_to_me(self, request, queryset):
        self._each(request, queryset, lambda c: teaminbox.conversation_assign(
            conversation=c, assignee=request.user, actor=actor_of(request)), "assigned to you")  # fmt: skip

    @admin.action(description="Unassign", permissions=("manage",))
    def unassign(self, request, queryset):
        self._each(request, queryset, lambda c: teaminbox.conversation_assign(
            conversation=c, assignee=None, actor=actor_of(request)), "unassigned")  # fmt: skip

    @admin.action(description="Resolve", permissions=("manage",))
    def resolve(self, request, queryset):
        self._each(request, queryset, lambda c: teaminbox.conversation_set_state(
            conversation=c, state=ConversationState.RESOLVED, actor=actor_of(request)), "resolved")  # fmt: skip

    @admin.action(description="Reopen", permissions=("manage",))
    def reopen(self, request, queryset):
        self._each(request, queryset, lambda c: teaminbox.conversation_set_state(
            conversation=c, state=ConversationState.OPEN, actor=actor_of(request)), "reopened")  # fmt: skip

    # --- Pages and the thread's forms -----------------------------------------------------------

    def team_urls(self):
        def view(function):
            return self.admin_site.admin_view(function)

        return [
            path("reports/", view(self.reports_view), name="inbox_conversation_reports"),
            path("<int:object_id>/assign/", view(self.assign_view), name="inbox_conversation_assign"),
            path("<int:object_id>/state/", view(self.state_view), name="inbox_conversation_state"),
            path("<int:object_id>/labels/", view(self.labels_view), name="inbox_conversation_labels"),
            path("<int:object_id>/notes/", view(self.note_view), name="inbox_conversation_note"),
            path("<int:object_id>/contact/", view(self.contact_view), name="inbox_conversation_contact"),
            path("<int:object_id>/media/", view(self.media_view), name="inbox_conversation_media"),
        ]

    def team_context(self, request, conversation):
        """What the thread page shows of the team's work, beside the messages."""
        can_manage = self.has_manage_permission(request)
        saved = SavedReply.objects.filter(org_id=conversation.org_id) if self.has_reply_permission(request) else []
        return {
            "can_manage": can_manage,
            "state": teaminbox.shown_state(conversation),
            "states": ConversationState.choices,
            "agents": teaminbox.agents_of(conversation.org) if can_manage else [],
            "labels": Label.objects.filter(org_id=conversation.org_id),
            "label_ids": {label.pk for label in conversation.labels.all()},
            "saved_replies": [
                (reply, teaminbox.saved_reply_text(reply, conversation=conversation, agent=request.user))
                for reply in saved
            ],
            "contact_url": reverse("admin:inbox_conversation_contact", args=[conversation.pk]),
            **{
                f"{name}_url": reverse(f"admin:inbox_conversation_{name}", args=[conversation.pk])
                for name in ("assign", "state", "labels", "note")
            },
        }

    def _team_change(self, request, object_id, change):
        """A POST from the thread page's forms: `change(conversation)`, then back to the thread."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_manage_permission(request):
            raise PermissionDenied
        conversation = self.get_object(request, object_id)
        try:
            change(conversation)
        except ApiError as error:
            self.message_user(request, error.message, messages.ERROR)
        return HttpResponseRedirect(reverse("admin:inbox_conversation_change", args=[conversation.pk]))

    def assign_view(self, request, object_id):
        def assign(conversation):
            chosen = request.POST.get("assignee", "")
            if request.POST.get("me"):
                assignee = request.user
            elif chosen:
                assignee = teaminbox.agents_of(conversation.org).filter(pk=chosen).first()
                if assignee is None:
                    raise InvalidField("assignee", "Pick a member of the conversation's org.")
            else:
                assignee = None
            teaminbox.conversation_assign(conversation=conversation, assignee=assignee, actor=actor_of(request))

        return self._team_change(request, object_id, assign)

    def state_view(self, request, object_id):
        def set_state(conversation):
            until = request.POST.get("snoozed_until", "").strip()
            state = request.POST.get("state", "")
            moment = None
            if state == ConversationState.SNOOZED and until:
                moment = parse_datetime(until)
                if moment is None:
                    raise InvalidField("snoozed_until", "Give the time to come back as a date and time.")
                if timezone.is_naive(moment):
                    moment = timezone.make_aware(moment)
            teaminbox.conversation_set_state(
                conversation=conversation, state=state, snoozed_until=moment, actor=actor_of(request)
            )

        return self._team_change(request, object_id, set_state)

    def labels_view(self, request, object_id):
        def set_labels(conversation):
            chosen = [pk for pk in request.POST.getlist("labels") if pk.isdigit()]
            labels = list(Label.objects.filter(org_id=conversation.org_id, pk__in=chosen))
            teaminbox.conversation_set_labels(conversation=conversation, labels=labels, actor=actor_of(request))

        return self._team_change(request, object_id, set_labels)

    def note_view(self, request, object_id):
        return self._team_change(
            request,
            object_id,
            lambda c: teaminbox.note_add(conversation=c, body=request.POST.get("body", ""), actor=actor_of(request)),
        )

    def media_view(self, request, object_id):
        """The media of the conversation's message `?message=msg_…`, read from Meta with the number's
        token by Kirim: the browser sees only this URL, never the token or Meta's. Documents and
        videos download; the rest show inline."""
        conversation = self.get_object(request, object_id)
        message_id = request.GET.get("message", "")
        message = conversation.messages().filter(external_id=message_id, type__in=MEDIA_TYPES).first()
        media_id = media_id_of(message)
        if media_id is None:
            raise Http404("No media in this conversation with this id.")
        try:
            number, description = media_describe(org=conversation.org, media_id=media_id)
            content_type, chunks = meta_graph.media_download(number, description.get("url"))
        except ApiError as error:
            raise Http404(error.message) from None
        response = StreamingHttpResponse(chunks, content_type=content_type)
        if message.type in ("document", "video"):
            filename = message.payload[message.type].get("filename") or f"{message.type}-{message.external_id}"
            response["Content-Disposition"] = f'attachment; filename="{safe_filename(filename)}"'
        response["Cache-Control"] = "private, max-age=300"
        return response

    def contact_view(self, request, object_id):
        """The contact of a conversation: names, number, user id, username, groups, and their
        conversations on every number of the org."""
        conversation = self.get_object(request, object_id)
        if not self.has_view_permission(request, conversation):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": conversation.contact_name or conversation.contact_shown,
            **contact_of(self.get_queryset(request), conversation),
        }
        return TemplateResponse(request, "admin/inbox/conversation/contact.html", context)

    def reports_view(self, request):
        if not request.user.has_perm(REPORTS_PERMISSION):
            raise PermissionDenied
        orgs = self.related_choices(request, Org)
        days = reports.DAYS.get(request.GET.get("days", ""), reports.DEFAULT_DAYS)
        report = reports.inbox_report(orgs=orgs, days=days)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Inbox reports",
            "report": report,
            "days": days,
            "day_choices": sorted(reports.DAYS.values()),
        }
        return TemplateResponse(request, "admin/inbox/conversation/reports.html", context)
