"""The team's work on conversations: who handles one (assignment), where it stands (open, pending,
snoozed until a time, resolved), its labels and private notes, saved replies, and the first response
that the reports measure. The one writer of these, for the admin and the API alike, and for Kirim's own
changes (a contact reopening a conversation, the round robin); each change is passed to the org's
subscribers through the outbox, and each made by staff, a key or the round robin is recorded in the
audit log, in the transaction that makes it."""

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from core.errors import InvalidField
from inbox.models import (
    Conversation,
    ConversationCycle,
    ConversationLabel,
    ConversationState,
    Label,
    Membership,
    Note,
    Org,
    PhoneNumber,
    SavedReply,
)
from orgs.audit import audit_write
from orgs.models import ApiKey, AuditAction
from outbox import record as outbox
from outbox.models import EventType

NOTE_MAX = 10_000
SAVED_REPLY_VARIABLES = ("contact_name", "agent_name")
VARIABLE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def open_now(now: datetime | None = None) -> Q:
    """Conversations that need the team: open ones, and snoozed ones whose time has come."""
    return Q(state=ConversationState.OPEN) | Q(
        state=ConversationState.SNOOZED, snoozed_until__lte=now or timezone.now()
    )


def not_resolved() -> Q:
    return ~Q(state=ConversationState.RESOLVED)


def state_q(state: str, now: datetime | None = None) -> Q:
    """Conversations in `state` as shown (shown_state): a snooze past its time is open, not snoozed."""
    now = now or timezone.now()
    if state == ConversationState.OPEN:
        return open_now(now)
    if state == ConversationState.SNOOZED:
        return Q(state=state, snoozed_until__gt=now)
    return Q(state=state)


def shown_state(conversation: Conversation, now: datetime | None = None) -> str:
    """The state as people and integrators see it: a snooze past its time is open again."""
    until = conversation.snoozed_until
    if conversation.state == ConversationState.SNOOZED and until is not None and until <= (now or timezone.now()):
        return ConversationState.OPEN
    return str(conversation.state)


def agents_of(org: Org | int, *, present_since: datetime | None = None) -> QuerySet[User]:
    """The staff users of the org, by username: who a conversation can be assigned to; with
    `present_since`, only those whose inbox pages polled since then (presence_record)."""
    membership = Q(kirim_memberships__org=org)
    if present_since is not None:
        membership &= Q(kirim_memberships__last_seen_at__gte=present_since)
    users: QuerySet[User] = get_user_model().objects.filter(membership, is_active=True)
    return users.order_by("username")


def presence_record(user: User, now: datetime | None = None) -> None:
    """`user` has an inbox page open (they poll while open): present for AGENT_PRESENT_SECONDS. One
    conditional UPDATE, which writes at most every quarter of that however often the pages poll."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.AGENT_PRESENT_SECONDS / 4)
    Membership.objects.filter(Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=stale), user=user).update(
        last_seen_at=now
    )


def agent_named(org: Org, username: object) -> User:
    """The org's staff user `username`; InvalidField for anyone else, another org's staff included."""
    user = agents_of(org).filter(username=username).first() if isinstance(username, str) else None
    if user is None:
        raise InvalidField("assignee", "`assignee` takes the username of a staff member of the org, or null.")
    return user


def as_data(conversation: Conversation, now: datetime | None = None) -> dict[str, Any]:
    """A conversation as the API answers it and its events carry it."""
    number = conversation.phone_number
    return {
        "id": conversation.external_id,
        "object": "conversation",
        "phone_number_id": number.phone_number_id,
        "contact": {
            "wa_id": conversation.contact_wa_id,
            "user_id": conversation.contact_user_id or None,
            "name": conversation.contact_name,
        },
        "state": shown_state(conversation, now),
        "snoozed_until": _iso(conversation.snoozed_until) if conversation.state == ConversationState.SNOOZED else None,
        "assignee": conversation.assignee.username if conversation.assignee is not None else None,
        "labels": sorted(label.name for label in conversation.labels.all()),
        "last_message_at": _iso(conversation.last_message_at),
        "last_message_text": conversation.last_message_text,
        "last_direction": conversation.last_direction,
    }


def _iso(moment: datetime | None) -> str | None:
    return outbox.iso(moment) if moment else None


@dataclass(frozen=True)
class Actor:
    """Who made a change: a staff user in the admin or an API key, from `address`; or, with neither,
    Kirim itself (`system` names what did it)."""

    user: User | None = None
    api_key: ApiKey | None = None
    address: str = ""
    system: str = ""

    def as_data(self) -> dict[str, str]:
        if self.user is not None:
            return {"type": "user", "username": self.user.username}
        if self.api_key is not None:
            return {"type": "api_key", "id": self.api_key.external_id}
        return {"type": "system", "name": self.system}

    def audit(self, action: str, conversation: Conversation, detail: str = "") -> None:
        """The change's entry in the org's audit log, written in the change's transaction."""
        audit_write(action, org=conversation.org_id, target=conversation, detail=detail, user=self.user,
                    key=self.api_key, address=self.address, by=f"Kirim ({self.system})")  # fmt: skip


def _locked(conversation: Conversation) -> Conversation:
    """The conversation's row, locked until the transaction ends: changes to one conversation queue up."""
    return (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("phone_number", "assignee")
        .get(pk=conversation.pk)
    )


def _announce(event_type: str, conversation: Conversation, actor: Actor, **extra: object) -> None:
    outbox.events_record(
        event_type, {conversation.org_id: {"conversation": as_data(conversation), "by": actor.as_data(), **extra}}
    )


@transaction.atomic
def conversation_assign(
    *, conversation: Conversation, assignee: User | None, actor: Actor, only_if_unassigned: bool = False
) -> Conversation:
    """Give the conversation to `assignee` (a staff user of its org) or to nobody (None); with
    `only_if_unassigned`, only if nobody has it. Returns the conversation as it stands; nothing is
    recorded when it already had that assignee."""
    if assignee is not None and not Membership.objects.filter(user=assignee, org_id=conversation.org_id).exists():
        raise InvalidField("assignee", "Only a staff member of the conversation's org can be assigned.")
    row = _locked(conversation)
    if row.assignee_id == (assignee.pk if assignee else None) or (only_if_unassigned and row.assignee_id):
        return row
    previous = row.assignee.username if row.assignee is not None else None
    row.assignee = assignee
    row.team_changed_at = timezone.now()
    row.save(update_fields=["assignee", "team_changed_at"])
    _announce(EventType.CONVERSATION_ASSIGNED, row, actor, previous_assignee=previous)
    actor.audit(AuditAction.ASSIGNMENT, row, f"to {assignee.get_username()}" if assignee else "unassigned")
    return row


ROUND_ROBIN = Actor(system="round robin")
CONTACT_WROTE = Actor(system="inbound message")


@dataclass(frozen=True)
class Opened:
    """A conversation that an inbound message opened: a new one (`previous_state` None), or one it
    reopened from `previous_state` (resolved, or snoozed until later)."""

    conversation_pk: int
    previous_state: str | None


def conversations_opened(opened: list[Opened]) -> None:
    """After inbound messages opened these conversations (inbox.services.inbound_rows, in its
    transaction): a reopening is passed on as `conversation.state_changed`, as a change by hand is;
    then each that nobody has, on a number that assigns automatically, goes to the next present agent."""
    rows = {
        row.pk: row
        for row in Conversation.objects.filter(pk__in=[o.conversation_pk for o in opened]).select_related(
            "phone_number", "assignee"
        )
    }
    for o in opened:
        if o.previous_state is not None:
            _announce(EventType.CONVERSATION_STATE_CHANGED, rows[o.conversation_pk], CONTACT_WROTE,
                      previous_state=o.previous_state)  # fmt: skip
    waiting: defaultdict[int, list[Conversation]] = defaultdict(list)
    for o in opened:
        row = rows[o.conversation_pk]
        if row.phone_number.auto_assign and row.assignee_id is None:
            waiting[row.phone_number_id].append(row)
    for number_pk, conversations in sorted(waiting.items()):
        _round_robin(number_pk, conversations)


def _round_robin(number_pk: int, conversations: list[Conversation]) -> None:
    """Give each conversation to the next present agent of the number's org, in turn by username.
    Whose turn was last lives on the number's row, locked until the transaction ends: two hosts
    assigning for one number at once take turns, never the same one twice."""
    number = PhoneNumber.objects.select_for_update().only("auto_assign_last", "org_id").get(pk=number_pk)
    present = list(agents_of(number.org_id, present_since=timezone.now() - timedelta(
        seconds=settings.AGENT_PRESENT_SECONDS)))  # fmt: skip
    if not present:
        return
    last = number.auto_assign_last.username if number.auto_assign_last is not None else None
    turn = 0 if last is None else next((n for n, agent in enumerate(present) if agent.username > last), 0)
    for conversation in conversations:
        agent = present[turn % len(present)]
        conversation_assign(conversation=conversation, assignee=agent, actor=ROUND_ROBIN, only_if_unassigned=True)
        turn += 1
        number.auto_assign_last = agent
    number.save(update_fields=["auto_assign_last"])


def check_snooze(state: str, snoozed_until: datetime | None, now: datetime | None = None) -> None:
    if state == ConversationState.SNOOZED:
        if snoozed_until is None:
            raise InvalidField("snoozed_until", "A snoozed conversation needs `snoozed_until`, a time to come back.")
        if snoozed_until <= (now or timezone.now()):
            raise InvalidField("snoozed_until", "`snoozed_until` must be in the future.")
    elif snoozed_until is not None:
        raise InvalidField("snoozed_until", "`snoozed_until` goes only with the state `snoozed`.")


@transaction.atomic
def conversation_set_state(
    *, conversation: Conversation, state: str, actor: Actor, snoozed_until: datetime | None = None
) -> Conversation:
    """Move the conversation to `state` (snoozed: until `snoozed_until`). Resolving ends its cycle,
    which is kept for the reports; the contact writing again opens the next (inbox.services)."""
    if state not in ConversationState.values:
        raise InvalidField("state", f"`state` is one of {', '.join(ConversationState.values)}.")
    now = timezone.now()
    check_snooze(state, snoozed_until, now)
    row = _locked(conversation)
    previous = shown_state(row, now)
    if previous == state and row.snoozed_until == snoozed_until:
        return row
    changed = ["state", "snoozed_until", "team_changed_at"]
    if state == ConversationState.RESOLVED and row.opened_at is not None:
        ConversationCycle.objects.create(
            org_id=row.org_id, conversation=row, opened_at=row.opened_at, first_response_at=row.first_response_at,
            first_responder_id=row.first_responder_id, resolved_at=now, resolver=actor.user,
        )  # fmt: skip
        row.opened_at = row.first_response_at = row.first_responder = None
        changed += ["opened_at", "first_response_at", "first_responder"]
    row.state, row.snoozed_until, row.team_changed_at = state, snoozed_until, now
    row.save(update_fields=changed)
    _announce(EventType.CONVERSATION_STATE_CHANGED, row, actor, previous_state=previous)
    until = f" until {_iso(snoozed_until)}" if snoozed_until else ""
    actor.audit(AuditAction.STATE_CHANGED, row, f"{previous} to {state}{until}")
    return row


@transaction.atomic
def conversation_set_labels(*, conversation: Conversation, labels: Iterable[Label], actor: Actor) -> Conversation:
    """Make the conversation's labels exactly `labels` (the org's Label rows)."""
    if any(label.org_id != conversation.org_id for label in labels):
        raise InvalidField("labels", "Only the org's own labels can be put on its conversations.")
    row = _locked(conversation)
    wanted = {label.pk for label in labels}
    had = set(ConversationLabel.objects.filter(conversation=row).values_list("label_id", flat=True))
    if wanted == had:
        return row
    ConversationLabel.objects.filter(conversation=row, label_id__in=had - wanted).delete()
    ConversationLabel.objects.bulk_create([ConversationLabel(conversation=row, label_id=pk) for pk in wanted - had])
    row.team_changed_at = timezone.now()
    row.save(update_fields=["team_changed_at"])
    actor.audit(AuditAction.LABELS_CHANGED, row, ", ".join(sorted(label.name for label in labels)) or "none")
    return row


def labels_named(org: Org, names: object) -> list[Label]:
    """The org's labels of these names; InvalidField naming one it does not have."""
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise InvalidField("labels", "`labels` takes a list of label names.")
    found = {label.name: label for label in Label.objects.filter(org=org, name__in=names)}
    missing = sorted(set(names) - set(found))
    if missing:
        raise InvalidField("labels", f"The org has no label named {missing[0]!r}.")
    return list(found.values())


@transaction.atomic
def note_add(*, conversation: Conversation, body: object, actor: Actor) -> Note:
    """A private note in the thread. Never sent to WhatsApp: nothing here talks to Meta."""
    body = (body or "").strip() if isinstance(body, str) else None
    if not body:
        raise InvalidField("body", "A note needs a `body` with some text.")
    if len(body) > NOTE_MAX:
        raise InvalidField("body", f"A note takes at most {NOTE_MAX} characters.")
    row = _locked(conversation)
    note = Note.objects.create(org_id=row.org_id, conversation=row, author=actor.user, body=body)
    row.team_changed_at = note.created_at
    row.save(update_fields=["team_changed_at"])
    _announce(EventType.CONVERSATION_NOTE_ADDED, row, actor, note=note_as_data(note))
    actor.audit(AuditAction.NOTE, row, note.external_id)  # the body stays in the thread, out of the log
    return note


def note_as_data(note: Note) -> dict[str, Any]:
    return {
        "id": note.external_id,
        "object": "note",
        "body": note.body,
        "author": note.author.username if note.author is not None else None,
        "created_at": _iso(note.created_at),
    }


def first_response_record(*, conversation: Conversation, user: User, at: datetime) -> None:
    """An agent answered: the first answer of the conversation's open cycle is its first response.
    One conditional UPDATE, so two agents answering at once record one of them."""
    Conversation.objects.filter(pk=conversation.pk, opened_at__isnull=False, first_response_at__isnull=True).update(
        first_response_at=at, first_responder=user
    )


def saved_reply_text(saved_reply: SavedReply, *, conversation: Conversation, agent: User) -> str:
    """The saved reply's body with its variables filled in; an unknown variable is left as written."""
    values = {
        "contact_name": conversation.contact_name or conversation.contact_shown,
        "agent_name": agent.get_full_name() or agent.get_username(),
    }
    return VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), saved_reply.body)
