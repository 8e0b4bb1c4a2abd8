"""Keyset pagination, newest first: a page never shifts when rows are inserted above it.

The cursor is opaque to clients and signed with SECRET_KEY: it names the last row seen by its public
id and timestamp, and the query it belongs to, so it cannot be forged into another filter or org."""

import hashlib
import json
from typing import Any, TypeVar

from django.core import signing
from django.db.models import Model, Q, QuerySet
from django.utils.dateparse import parse_datetime

from core.errors import InvalidField

SALT = "core.pagination.cursor"

Row = TypeVar("Row", bound=Model)


def _scope_digest(scope: object) -> str:
    return hashlib.sha256(json.dumps(scope, sort_keys=True, default=str).encode()).hexdigest()[:24]


def keyset_page(
    queryset: QuerySet[Row],
    *,
    scope: object,
    limit: int,
    cursor: str | None = None,
    order_field: str = "timestamp",
) -> tuple[list[Row], bool, str | None]:
    """One page of `queryset` ordered by (`order_field`, external_id) descending.

    Returns (rows, has_more, next_cursor). `scope` is everything that defines the query (org, number,
    filters): a cursor from another scope is refused."""
    digest = _scope_digest(scope)
    if cursor:
        try:
            position = signing.loads(cursor, salt=SALT)
        except signing.BadSignature:
            raise InvalidField("cursor", "This cursor is not valid: pass `next_cursor` from a previous page.") from None
        if position.get("scope") != digest:
            raise InvalidField("cursor", "This cursor belongs to another query: keep the same filters while paging.")
        timestamp = parse_datetime(position["timestamp"])
        queryset = queryset.filter(
            Q(**{f"{order_field}__lt": timestamp}) | Q(**{order_field: timestamp, "external_id__lt": position["after"]})
        )
    rows = list(queryset.order_by(f"-{order_field}", "-external_id")[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if has_more:
        last: Any = rows[-1]  # any model with a public `external_id`
        next_cursor = signing.dumps(
            {"scope": digest, "timestamp": getattr(last, order_field).isoformat(), "after": last.external_id}, salt=SALT
        )
    return rows, has_more, next_cursor
