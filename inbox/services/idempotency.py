"""`Idempotency-Key` for sends: the first response to a key is kept 24 hours per org and replayed.

A key is claimed by inserting its row; the unique (org, key) constraint lets exactly one request in
any process on any host win. The others see the row: still in progress (409), another body (422),
or done (the stored response, replayed with `Idempotent-Replayed: true`).

A key in progress has a lease (META_CLAIM_LEASE): when its request died (worker killed, database
restarted), a retry takes the key over and answers what became of that send, never sending twice.
A send Meta certainly never received frees its key, so a retry with it sends; one whose fate is not
known yet (202, or a Meta-shaped "unconfirmed" error) leaves it open, so a retry learns the outcome."""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Literal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import IdempotencyInProgress, IdempotencyKeyReuse, UpstreamError
from inbox.models import IdempotencyRecord, Org
from meta.graph import Json

KEEP_FOR = timedelta(hours=24)
# What becomes of a key once its request has answered.
Outcome = Literal["store", "keep_open", "release"]
STORE: Final = "store"  # the answer is final: kept and replayed
KEEP_OPEN: Final = "keep_open"  # the send's fate is not known yet: the next retry takes the key over
RELEASE: Final = "release"  # nothing reached Meta: the key is free, and a retry with it sends


def outcome_of(error: UpstreamError) -> Outcome:
    """The key's outcome after a send failed with UpstreamError `error`."""
    outcomes: dict[bool | None, Outcome] = {False: RELEASE, None: KEEP_OPEN}
    return outcomes.get(error.meta_received, STORE)


@dataclass(frozen=True)
class Claim:
    """A request's hold on an idempotency key: the key's record, and whether this request took the key
    over from an earlier one that died holding it."""

    record: IdempotencyRecord
    taken_over: bool = False


# What `act` answers: (HTTP status, JSON body, outcome).
Acted = tuple[int, Json, Outcome]


def once(*, org: Org, key: str, scope: str, body: object, act: Callable[[Claim], Acted]) -> tuple[int, Json, bool]:
    """Run `act(record)` once per (org, key), whatever the doors, processes or hosts: it returns
    (status, JSON body, outcome); with STORE the answer is kept and answered to every later call with
    the same key and body, as (status, body, replayed). Another body under the key is
    IdempotencyKeyReuse; a key still in flight is IdempotencyInProgress, until its lease runs out and
    `act` runs again with a Claim `taken_over`. The API's Idempotency-Key and the admin's reply form
    use this."""
    digest = hashlib.sha256(json.dumps([scope, body], sort_keys=True).encode()).hexdigest()
    claim = _claim(org, key, digest)
    record = claim.record
    if record.state == IdempotencyRecord.State.DONE:
        # written with the DONE state
        assert record.response_status is not None and record.response_body is not None
        return record.response_status, record.response_body, True
    try:
        status, stored_body, outcome = act(claim)
    except BaseException:
        record.delete()  # a bug, or the worker stopping: nothing was answered, so the key is free again
        raise
    if outcome == RELEASE:
        record.delete()
        return status, stored_body, False
    if outcome == KEEP_OPEN:  # its lease ends now: a retry takes the key over and answers the send as it stands
        IdempotencyRecord.objects.filter(pk=record.pk).update(lease_expires_at=timezone.now())
        return status, stored_body, False
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=IdempotencyRecord.State.DONE, response_status=status, response_body=stored_body
    )
    return status, stored_body, False


def _claim(org: Org, key: str, digest: str) -> Claim:
    """The Claim of our new in-progress record, of one taken over, or of the finished one of an
    identical earlier request."""
    now = timezone.now()
    lease_until = now + timedelta(seconds=settings.META_CLAIM_LEASE)
    for _ in range(2):
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    org=org, key=key, request_digest=digest, expires_at=now + KEEP_FOR, lease_expires_at=lease_until
                )
            return Claim(record)
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(org=org, key=key).first()
        if existing is None:
            continue  # released in the meantime: claim again
        if existing.expires_at <= now:
            IdempotencyRecord.objects.filter(pk=existing.pk, expires_at__lte=now).delete()
            continue
        if existing.request_digest != digest:
            raise IdempotencyKeyReuse()
        if existing.state == IdempotencyRecord.State.IN_PROGRESS:
            # Its request died, or left the outcome open: one retry takes it over (a conditional UPDATE).
            lease_ran_out = existing.lease_expires_at is not None and existing.lease_expires_at <= now
            if not lease_ran_out or not IdempotencyRecord.objects.filter(
                pk=existing.pk, state=existing.state, lease_expires_at=existing.lease_expires_at
            ).update(lease_expires_at=lease_until):
                raise IdempotencyInProgress()
            existing.lease_expires_at = lease_until
            return Claim(existing, taken_over=True)
        return Claim(existing)
    raise IdempotencyInProgress()
