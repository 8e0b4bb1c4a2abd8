"""`Idempotency-Key` for sends: the first response to a key is kept 24 hours per org and replayed.

A key is claimed by inserting its row; the unique (org, key) constraint lets exactly one request in
any process on any host win. The others see the row: still in progress (409), another body (422),
or done (the stored response, replayed with `Idempotent-Replayed: true`)."""

import hashlib
import json
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.utils import timezone

from inbox.models import IdempotencyRecord
from kirim.errors import ApiError, IdempotencyInProgress, IdempotencyKeyReuse, InvalidField, error_response

KEEP_FOR = timedelta(hours=24)
HEADER = "Idempotency-Key"


def run_once(request, *, org, scope, body, respond, render_error=error_response, restamp=True):
    """Answer with `respond()` once per Idempotency-Key; without the header, just respond.

    `render_error` answers a refusal in the door's shape; `restamp`: a replay carries this request's
    id in its body (Kirim's envelope), or is the stored body exactly (Meta's shapes have no id)."""
    key = request.headers.get(HEADER)
    if key is None:
        return respond()
    if not key or len(key) > 255:
        raise InvalidField(HEADER, "The Idempotency-Key header takes 1 to 255 characters.")
    first = []

    def act():
        try:
            response = respond()
        except ApiError as error:
            response = render_error(request, error)
        first.append(response)
        return response.status_code, response.data if hasattr(response, "data") else json.loads(response.content)

    status, stored_body, replayed = once(org=org, key=key, scope=scope, body=body, act=act)
    return _replay(request, status, stored_body, restamp=restamp) if replayed else first[0]


def once(*, org, key, scope, body, act):
    """Run `act()` once per (org, key), whatever the doors, processes or hosts: it returns (status,
    JSON body), which is kept and answered to every later call with the same key and body, as
    (status, body, replayed). Another body under the key is IdempotencyKeyReuse; a key still in
    flight is IdempotencyInProgress. The API's Idempotency-Key and the admin's reply form use this."""
    digest = hashlib.sha256(json.dumps([scope, body], sort_keys=True).encode()).hexdigest()
    record = _claim(org, key, digest)
    if record.state == IdempotencyRecord.State.DONE:
        return record.response_status, record.response_body, True
    try:
        status, stored_body = act()
    except BaseException:
        record.delete()  # a bug, or the worker stopping: nothing was answered, so the key is free again
        raise
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=IdempotencyRecord.State.DONE, response_status=status, response_body=stored_body
    )
    return status, stored_body, False


def _claim(org, key, digest):
    """Our new in-progress record, or the finished one of an identical earlier request."""
    now = timezone.now()
    for _ in range(2):
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    org=org, key=key, request_digest=digest, expires_at=now + KEEP_FOR
                )
            return record
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
            raise IdempotencyInProgress()
        return existing
    raise IdempotencyInProgress()


def _replay(request, status, body, *, restamp):
    if restamp:  # the stored answer under this request's id: the header and the body must agree
        if "error" in body:
            body = {"error": {**body["error"], "request_id": request.request_id}}
        else:
            body = {**body, "request_id": request.request_id}
    response = JsonResponse(body, status=status)
    response["Idempotent-Replayed"] = "true"
    return response
