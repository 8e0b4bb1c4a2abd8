"""Writers of the inbox: sending messages, and what Meta's webhooks bring in. Read state is
`receipts.services.reads`'s alone."""

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import reduce
from operator import or_

from django.db.models import Case, JSONField, Q, QuerySet, Value, When
from django.utils import timezone

from inbox.models import (
    OUTBOUND_RANK,
    Direction,
    EarlyStatus,
    Message,
    Status,
    statuses_below,
)
from inbox.services import business
from meta import payloads
from meta.graph import Json

logger = logging.getLogger("kirim.inbox")


def early_statuses_apply(early: Iterable[EarlyStatus] | None = None) -> int:
    """Apply kept statuses whose wamid a send has stored since, and forget them; how many applied.

    A send calls this for its own wamid. A status kept at the very moment its send was checking is
    missed there (neither saw the other's uncommitted row), so `purge_expired` calls it for all."""
    early = list(early if early is not None else EarlyStatus.objects.all())
    if not early:
        return 0
    updates = [payloads.StatusUpdate(e.phone_number_id, e.wamid, e.status, e.timestamp, e.errors, pricing=e.pricing)
               for e in early]  # fmt: skip
    stored = set(_outbound(updates).values_list("wamid", flat=True))
    applied = [e for e in early if e.wamid in stored]
    if applied:
        _apply_statuses([u for u in updates if u.wamid in stored], keep_unknown=False)
        business.prices_record([u for u in updates if u.wamid in stored])
        EarlyStatus.objects.filter(pk__in=[e.pk for e in applied]).delete()
    return len(applied)


def _apply_statuses(updates: Sequence[payloads.StatusUpdate], *, keep_unknown: bool = True) -> int:
    """Move outbound messages up the status ladder, never down: one UPDATE per target status for all
    wamids that reach it (failed included), each conditional on the row being below it. Statuses for wamids no message
    has yet are kept for their sends (`keep_unknown`). Returns rows changed."""
    highest: dict[str, payloads.StatusUpdate] = {}
    failures: dict[str, payloads.StatusUpdate] = {}
    for update in updates:
        if update.status == Status.FAILED:
            failures[update.wamid] = update
        elif update.status in OUTBOUND_RANK:
            current = highest.get(update.wamid)
            if current is None or OUTBOUND_RANK[update.status] > OUTBOUND_RANK[current.status]:
                highest[update.wamid] = update
        else:
            logger.info("status %r for %s ignored", update.status, update.wamid)
    by_target: defaultdict[str, list[payloads.StatusUpdate]] = defaultdict(list)
    for update in highest.values():
        by_target[update.status].append(update)
    now = timezone.now()
    changed = 0
    for target, group in by_target.items():
        changed += _outbound(group).filter(status__in=statuses_below(target)).update(status=target, updated_at=now)
    if failures:  # one UPDATE for all, each row given its own errors (wamids are unique)
        errors_of_each = Case(
            *(When(wamid=u.wamid, then=Value({"errors": u.errors}, JSONField())) for u in failures.values())
        )
        changed += (
            _outbound(failures.values())
            .filter(status__in=statuses_below(Status.FAILED))
            .update(status=Status.FAILED, error=errors_of_each, updated_at=now)
        )
    if keep_unknown:
        pricing = {u.wamid: u.pricing for u in updates if u.pricing}
        changed += _keep_early([*highest.values(), *failures.values()], pricing)
    return changed


def _keep_early(updates: Sequence[payloads.StatusUpdate], pricing: dict[str, Json]) -> int:
    """Statuses whose wamid no outbound message has yet. A send whose answer from Meta was lost is found
    by Kirim's id (echoed in biz_opaque_callback_data), given the wamid and moved; the others are kept
    for their sends, which may still be storing the wamid, with the `pricing` any status of their
    wamid carried (the highest status, the one kept, may carry none). Returns rows changed."""
    if not updates:
        return 0
    known = set(_outbound(updates).values_list("wamid", flat=True))
    early = [update for update in updates if update.wamid not in known]
    changed = 0
    lost_answers = [update for update in early if update.message_id]
    if lost_answers:
        adopted = _adopt_wamids(lost_answers)
        changed = _apply_statuses([u for u in lost_answers if u.wamid in adopted], keep_unknown=False)
        early = [update for update in early if update.wamid not in adopted]
    if early:
        logger.info("%d status(es) for wamids not stored yet kept for their sends", len(early))
        EarlyStatus.objects.bulk_create(
            EarlyStatus(phone_number_id=u.phone_number_id, wamid=u.wamid, status=u.status, errors=u.errors,
                        pricing=pricing.get(u.wamid), timestamp=u.timestamp)
            for u in early
        )  # fmt: skip
    return changed


def _adopt_wamids(updates: Sequence[payloads.StatusUpdate]) -> set[str | None]:
    """Give each send named by Kirim's id in these statuses the wamid Meta reported, where it has none
    (its answer was lost); one UPDATE for all. The wamids now stored."""
    on_their_numbers = reduce(
        or_, (Q(phone_number__phone_number_id=u.phone_number_id, external_id=u.message_id) for u in updates)
    )
    wamid_of_each = Case(*(When(external_id=u.message_id, then=Value(u.wamid)) for u in updates))
    Message.objects.filter(on_their_numbers, direction=Direction.OUTBOUND, wamid__isnull=True).update(
        wamid=wamid_of_each, updated_at=timezone.now()
    )
    adopted = set(_outbound(updates).values_list("wamid", flat=True))
    if adopted:
        logger.info("%d send(s) whose answer was lost matched by their status webhooks", len(adopted))
    return adopted


def _outbound(updates: Iterable[payloads.StatusUpdate]) -> QuerySet[Message]:
    """The outbound rows these updates name, each only on the number the webhook came for."""
    by_number: defaultdict[str, list[str]] = defaultdict(list)
    for update in updates:
        by_number[update.phone_number_id].append(update.wamid)
    on_their_numbers = reduce(
        or_, (Q(phone_number__phone_number_id=number, wamid__in=wamids) for number, wamids in by_number.items())
    )
    return Message.objects.filter(on_their_numbers, direction=Direction.OUTBOUND)
