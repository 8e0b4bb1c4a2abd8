"""Reading in bulk: a selection of messages read with one receipt per conversation (its newest unread
message), a few at a time, for the admin action, the staff inbox and `batch_read`."""

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Case, Count, F, Q, Value, When, Window
from django.db.models.functions import RowNumber

from core.errors import UpstreamError
from inbox.models import Direction, Message, ReadVia, Status
from meta import graph as meta_graph
from outbox import record as outbox
from outbox.models import EventType
from receipts.services.reads import Item, Messages, _read_up_to, _wamid

if TYPE_CHECKING:
    from receipts.services.reads import Target

logger = logging.getLogger("kirim.receipts")


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
