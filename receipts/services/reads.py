"""The only writer of read state. The API, the admin action and `batch_read` all call these."""

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, TypeVar

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Case, Count, F, Q, Value, When, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from core.db.waiting import hold_nothing
from core.errors import InvalidField, NotFound, UpstreamError
from inbox.models import ApiKey, Direction, Message, MessageQuerySet, Org, ReadVia, Status
from inbox.selectors import phone_number_of
from meta import graph as meta_graph
from outbox import record as outbox
from outbox.models import EventType, WebhookSubscription

logger = logging.getLogger("kirim.receipts")

# outbox.wanting() for message.read: {org_id: [subscriptions]}.
Subscribers = dict[int, list[WebhookSubscription]]
Item = TypeVar("Item")
Messages = MessageQuerySet[Message]


class _Selected(TypedDict):
    selected_unread: int  # how many of the selection a conversation's target stands for


if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    Target = WithAnnotations[Message, _Selected]


@dataclass(frozen=True)
class ReadOutcome:
    message: Message
    rows_read: int  # 0 when it was read already


def _inbound_message(*, org: Org, phone_number_id: str, wamid: str) -> Message:
    """The inbound message `wamid` of this org's number; another number's or org's is simply not found."""
    message: Message | None = Message.for_wamid(wamid)  # the hot path needs no other lookup
    if message is None or message.org_id != org.pk or message.phone_number.phone_number_id != phone_number_id:
        phone_number_of(org, phone_number_id)  # an unknown number is the 404 to give first
        raise NotFound("No message with this message_id on this phone number.", param="message_id")
    if message.direction != Direction.INBOUND:
        raise InvalidField("message_id", "This is an outbound message: only inbound messages can be marked read.")
    return message


def message_mark_read(
    *,
    org: Org,
    phone_number_id: str,
    wamid: str,
    typing: bool = False,
    via: str,
    user: User | None = None,
    api_key: ApiKey | None = None,
) -> ReadOutcome:
    """Mark an inbound message read on WhatsApp and here, with every earlier unread inbound message of
    its conversation (WhatsApp reads those too).

    Already read: returned at once, no call to Meta, whoever read it. If Meta fails, UpstreamError
    propagates and the message stays unread, so a retry tries again."""
    message = _inbound_message(org=org, phone_number_id=phone_number_id, wamid=wamid)
    return _read_up_to(
        message,
        send_receipt=lambda: meta_graph.mark_read(message.phone_number, wamid, typing=typing),
        read_state={"read_via": via, "read_by_user": user, "read_by_key": api_key},
    )


def typing_indicator_show(*, message: Message, user: User) -> ReadOutcome:
    """Show the contact a typing bubble while an agent writes to them. Meta sends it together with a
    read receipt for their message, so the conversation is read here too, as message_mark_read would;
    when it is read already, only the bubble is sent again. UpstreamError if Meta refuses."""

    def send_receipt() -> None:
        meta_graph.mark_read(message.phone_number, _wamid(message), typing=True)

    if message.is_read:
        send_receipt()
        return ReadOutcome(message, 0)
    return _read_up_to(message, send_receipt=send_receipt, read_state={"read_via": ReadVia.ADMIN, "read_by_user": user})


def _read_with(message: Message) -> Messages:
    """The rows a receipt for `message` reads: in a one-to-one chat, the earlier unread inbound
    messages of its conversation too (WhatsApp reads those with it); in a group, only that message.
    The target row is always included, so that a waiter sees the state the winner committed."""
    if message.group_id:
        return Message.objects.filter(pk=message.pk)
    conversation: Messages = Message.objects.conversation(message.phone_number_id, message.contact_wa_id)
    return conversation.filter(
        Q(pk=message.pk) | Q(direction=Direction.INBOUND, status=Status.RECEIVED, timestamp__lte=message.timestamp)
    )


def _read_up_to(
    message: Message,
    *,
    send_receipt: Callable[[], None] | None,
    read_state: dict[str, Any],
    subscribers: Subscribers | None = None,
) -> ReadOutcome:
    """Flip `message` and the earlier unread inbound messages of its conversation to read, after
    `send_receipt()` succeeds (None: flip locally, no receipt).

    Exactly one Meta call for concurrent identical requests, in any process on any host, with nothing
    held while Meta answers: a request claims the message (one conditional UPDATE setting a token and
    a lease), calls Meta with no transaction open, then settles in one short transaction. The others
    wait without a transaction for the claim's outcome and answer what it settled; a claim released
    on failure, or whose holder died (lease run out), is claimed again by one of them. `subscribers`:
    outbox.wanting() for message.read, when the caller looked them up for many messages at once."""
    if message.is_read:
        return ReadOutcome(message, 0)
    if send_receipt is None:  # nothing to wait on: no claim needed
        return _settle_read(message, read_state, with_receipt=False, subscribers=subscribers)
    while (token := Message.objects.claim_unread(message.pk, lease=settings.META_CLAIM_LEASE)) is None:
        if _wait_for_claim(message.pk):  # another request's receipt read it
            message.status = Status.READ
            return ReadOutcome(message, 0)
    try:
        send_receipt()
    except BaseException:
        Message.objects.release_claim(message.pk, token)  # still unread: the next request tries again
        raise
    return _settle_read(message, read_state, with_receipt=True, subscribers=subscribers)


CLAIM_POLL_FIRST, CLAIM_POLL_CAP = 0.02, 0.25  # seconds between looks at another request's claim


def _wait_for_claim(pk: int) -> bool:
    """Wait, with no transaction open, until another request's claim on message `pk` settles: True
    when it was read, False when the claim was released or its lease ran out (claim it again)."""
    pause = CLAIM_POLL_FIRST
    while True:
        hold_nothing()
        time.sleep(pause)
        pause = min(CLAIM_POLL_CAP, pause * 1.5)
        status, claim_expires_at = Message.objects.filter(pk=pk).values_list("status", "claim_expires_at").get()
        if status == Status.READ:
            return True
        if claim_expires_at is None or claim_expires_at <= timezone.now():
            return False


def _settle_read(
    message: Message, read_state: dict[str, Any], *, with_receipt: bool, subscribers: Subscribers | None
) -> ReadOutcome:
    """Mark the message and the earlier unread ones of its conversation read, in one short transaction
    (no network inside) that also clears the claim."""
    now = timezone.now()
    read_state = {**read_state, "status": Status.READ, "read_at": now}
    with transaction.atomic():
        # Served by the partial index message_unread_inbound.
        locked = {
            pk: (status, wamid) for pk, status, wamid in _read_with(message).lock_in_pk_order("pk", "status", "wamid")
        }
        if locked[message.pk][0] == Status.READ:  # read by another request's receipt meanwhile
            message.status = Status.READ
            return ReadOutcome(message, 0)
        # The rows are locked, so every one of them changes.
        Message.objects.filter(pk__in=list(locked)).update(
            updated_at=now, claim_token=None, claim_expires_at=None, **read_state
        )
        _announce_read(message, [wamid for _, wamid in locked.values()], read_state, subscribers)
    for name, value in read_state.items():
        setattr(message, name, value)
    logger.info(
        "conversation read up to message=%s via=%s rows_read=%d receipt=%s",
        message.external_id, read_state["read_via"], len(locked), with_receipt,
    )  # fmt: skip
    return ReadOutcome(message, len(locked))


def _announce_read(
    message: Message, wamids: list[str], read_state: dict[str, Any], subscribers: Subscribers | None
) -> None:
    """`message.read` for the org's subscribers, in the transaction that flips the rows."""
    if subscribers is not None and message.org_id not in subscribers:
        return
    outbox.events_record(
        EventType.MESSAGE_READ,
        {
            message.org_id: {
                "phone_number_id": message.phone_number.phone_number_id,
                "contact_wa_id": message.contact_wa_id,
                "message": {"id": message.external_id, "message_id": message.wamid},
                "read_message_ids": sorted(wamids),
                "read_at": outbox.iso(read_state["read_at"]),
                "read_via": read_state["read_via"],
            }
        },
        subscribers,
    )


@dataclass
class BulkReadResult:
    """What a bulk read did. Message counts, except `conversations` and `meta_calls`."""

    selected: int = 0
    read: int = 0
    conversations: int = 0
    meta_calls: int = 0
    read_locally: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> messages
    failures: list[tuple[str, str]] = field(default_factory=list)  # (conversation label, Meta's message)
    stopped: bool = False

    def summary(self) -> str:
        parts = [f"Marked {self.read} message(s) read in {self.conversations} conversation(s)"]
        if self.read_locally:
            parts.append(f"{self.read_locally} past the receipt window marked read here only, no receipt sent")
        if self.skipped:
            parts.append("skipped " + ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items())))
        if self.failures:
            parts.append(f"{len(self.failures)} conversation(s) failed and stay unread")
        if self.stopped:
            parts.append("stopped early: run it again to finish")
        return "; ".join(parts) + "."


class Progress(Protocol):
    """Told how a bulk read goes (batch_read's progress bar)."""

    def start(self, total: int) -> None: ...

    def step(self) -> None: ...


SKIP_OUTBOUND = "outbound (only inbound messages can be read)"
SKIP_ALREADY_READ = "already read"
SKIP_EXPIRED = "past the receipt window (Meta refuses those)"


def newest_unread_per_conversation(messages: Messages) -> "list[Target]":
    """Per conversation in `messages`: its newest unread inbound message (a receipt for it reads the
    rest), annotated with `selected_unread`, how many of the selection it stands for. A group message
    is read alone, so each is its own target."""
    own_receipt = Case(When(~Q(group_id=""), then=F("pk")), default=Value(0))
    conversation: list[F | Case] = [F("phone_number_id"), F("contact_wa_id"), own_receipt]
    return list(
        messages.unread_inbound()
        .annotate(
            rank=Window(RowNumber(), partition_by=conversation, order_by=[F("timestamp").desc(), F("pk").desc()]),
            selected_unread=Window(Count("pk"), partition_by=conversation),
        )
        .filter(rank=1)
        .select_related("phone_number")
        .order_by("phone_number_id", "contact_wa_id")
    )


def messages_mark_read(
    *,
    messages: Messages,
    via: str,
    user: User | None = None,
    concurrency: int = 8,
    receipt_cutoff: datetime | None = None,
    mark_expired_locally: bool = False,
    dry_run: bool = False,
    max_conversations: int | None = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
) -> BulkReadResult:
    """Mark a selection of messages read: one receipt per conversation (its newest selected unread
    inbound message), outbound and already-read rows skipped, Meta called by at most `concurrency`
    workers. Messages older than `receipt_cutoff` get no receipt (Meta would refuse it): skipped, or
    with `mark_expired_locally` read here only. A failed conversation stays unread. `stop` (an Event)
    ends the run after the calls in flight; `progress` (start(total), step()) is told as it goes.
    Each conversation commits on its own: safe to stop and re-run, and concurrent runs never send a
    message two receipts (the claims of _read_up_to)."""
    result = BulkReadResult()
    counts = messages.aggregate(
        selected=Count("pk"),
        outbound=Count("pk", filter=Q(direction=Direction.OUTBOUND)),
        already_read=Count("pk", filter=Q(direction=Direction.INBOUND, status=Status.READ)),
    )
    result.selected = counts["selected"]
    for reason, n in ((SKIP_OUTBOUND, counts["outbound"]), (SKIP_ALREADY_READ, counts["already_read"])):
        if n:
            result.skipped[reason] = n
    targets = newest_unread_per_conversation(messages)[:max_conversations]
    expired = {t.pk for t in targets if receipt_cutoff and t.timestamp < receipt_cutoff}
    if expired and not mark_expired_locally:
        result.skipped[SKIP_EXPIRED] = sum(t.selected_unread for t in targets if t.pk in expired)
        targets = [t for t in targets if t.pk not in expired]
    if dry_run:
        result.conversations = len(targets)
        result.meta_calls = sum(1 for t in targets if t.pk not in expired)
        result.read = sum(t.selected_unread for t in targets)
        result.read_locally = sum(t.selected_unread for t in targets if t.pk in expired)
        return result
    if progress:
        progress.start(len(targets))

    lock = threading.Lock()
    # One look at the orgs' subscriptions for the whole run, not one per conversation.
    subscribers = outbox.wanting(outbox.subscriptions_of({t.org_id for t in targets}), EventType.MESSAGE_READ)

    def read_one(target: "Target") -> None:
        with_receipt = target.pk not in expired
        try:
            outcome = _read_up_to(
                target,
                send_receipt=(lambda: meta_graph.mark_read(target.phone_number, _wamid(target)))
                if with_receipt
                else None,
                read_state={"read_via": via if with_receipt else ReadVia.EXPIRED_LOCALLY, "read_by_user": user},
                subscribers=subscribers,
            )
        except UpstreamError as error:
            with lock:
                result.failures.append((_label(target), (error.upstream or {}).get("message") or error.message))
                result.meta_calls += 1
        except Exception:  # one conversation's bug must not silently drop the others
            logger.exception("bulk read failed for message=%s", target.external_id)
            with lock:
                result.failures.append((_label(target), "internal error (logged)"))
        else:
            with lock:
                if outcome.rows_read:
                    result.conversations += 1
                    result.read += outcome.rows_read
                    result.meta_calls += int(with_receipt)
                    result.read_locally += 0 if with_receipt else outcome.rows_read
                else:
                    result.skipped[SKIP_ALREADY_READ] += target.selected_unread
        if progress:
            progress.step()

    result.stopped = not _run_bounded(targets, read_one, concurrency=concurrency, stop=stop)
    logger.info("bulk read via=%s asked=%d %s", via, result.selected, result.summary())
    return result


def _wamid(message: Message) -> str:
    """An inbound message's id at Meta, stored with it from the start (only a send waits for its own)."""
    assert message.wamid is not None, f"inbound message {message.pk} has no wamid"
    return message.wamid


def _label(message: Message) -> str:
    return f"{message.contact_name or message.contact_wa_id} on {message.phone_number.display_phone_number}"


def _run_bounded(
    items: Sequence[Item], work: Callable[[Item], None], *, concurrency: int, stop: threading.Event | None = None
) -> bool:
    """Call `work(item)` for each item with at most `concurrency` in flight. Returns False when `stop`
    was set before every item started. Worker threads close their own database connections."""
    pending = list(reversed(items))
    take = threading.Lock()

    def worker(close_connection: bool) -> None:
        try:
            while not (stop and stop.is_set()):
                with take:
                    if not pending:
                        return
                    item = pending.pop()
                work(item)
        finally:
            if close_connection:
                connection.close()

    # SQLite takes its one write lock for the whole of each receipt: parallel workers would only wait.
    parallel = concurrency if connection.vendor != "sqlite" else 1
    workers = max(1, min(parallel, len(items)))
    if workers == 1:
        worker(close_connection=False)  # in the caller's thread and transaction
    else:
        threads = [threading.Thread(target=worker, args=(True,), daemon=True) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return not pending
