"""Writers of the inbox: sending messages, and what Meta's webhooks bring in. Read state is
`receipts.services.reads`'s alone."""

import json
import logging
import re
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from datetime import datetime
from functools import cached_property
from typing import Any

from django.db import connection, transaction
from django.db.models import Field, JSONField
from django.utils import timezone

from core.db.bulk import column_of
from core.ids import new_public_id
from inbox.models import (
    Conversation,
    Direction,
    Message,
    PhoneNumber,
    WebhookEvent,
)
from inbox.services.inbound_rows import (
    CONVERSATION_UPSERT,
    InboundValues,
    _as_json,
    _conversation_identity,
    _failures_told,
    _fallback_key,
    _inbound_values,
)
from meta import payloads
from outbox.models import WebhookSubscription

logger = logging.getLogger("kirim.inbox")


# A fast path, with its plain path and their equivalence test: docs/development/performance.md.
SPACE_BY_PUNCTUATION = re.compile(r" ?([,=()<>]) ?")


class _InboundInOneStatement:
    """PostgreSQL, Meta's common case (a webhook of inbound messages): the numbers looked up, each
    message's conversation found by its contact's user id, the messages inserted (a wamid stored
    before is left alone), their conversations upserted and the event kept, all by one statement in
    autocommit: one round trip, where the steps cost seven (BEGIN, five statements, COMMIT). An org
    with webhook subscriptions, or a number that assigns conversations in turn, takes the steps,
    which also write the outbox and assign. The same
    rows and the same rules as `_store_inbound`, `_conversation_keys` and `conversations_touch`; the
    tests run both paths (this one on PostgreSQL, the steps on SQLite and for statuses)."""

    EXTRA = ("meta_number", "lookup_user_id", "conversation_user_id", "conversation_name", "conversation_id")
    # Columns no inbound message sets: the database's default (NULL, or its db_default) fills them,
    # and the statement stays under psycopg's length for caching (below).
    LEFT_TO_THE_DATABASE = ("sent_from_app", "edited_at", "edits", "deleted_at", "pricing")

    @cached_property
    def _columns(self) -> list[Field[Any, Any]]:
        """Message's columns given per row: all but the primary key, the two the number gives, and
        those left to the database."""
        return [f for f in self._inserted if f.name not in ("org", "phone_number")]

    @cached_property
    def _inserted(self) -> list[Field[Any, Any]]:
        return [
            f for f in Message._meta.concrete_fields if not f.primary_key and f.name not in self.LEFT_TO_THE_DATABASE
        ]

    @cached_property
    def _sql(self) -> str:
        """Under psycopg's limit for caching a statement's conversion (MAX_CACHED_STATEMENT_LENGTH,
        4096 characters; a test holds it there): past it, the conversion is redone on every webhook."""
        quote = connection.ops.quote_name
        message, number, conversation, event, subscription = (
            quote(model._meta.db_table)
            for model in (Message, PhoneNumber, Conversation, WebhookEvent, WebhookSubscription)
        )
        typed = ", ".join([f"{quote(column_of(f))} {f.db_type(connection)}" for f in self._columns]
                          + [f"{name} text" for name in self.EXTRA])  # fmt: skip
        given = {"contact_wa_id": "contact_key", "org_id": "number_org", "phone_number_id": "number_pk"}
        inserted_columns = [column_of(f) for f in self._inserted]
        values = ", ".join(given.get(column, quote(column)) for column in inserted_columns)
        # Spaces are only needed between words: none around punctuation (no literal here holds any).
        return SPACE_BY_PUNCTUATION.sub(r"\1", " ".join(
            f"""
            WITH incoming AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS i({typed})),
            stepped AS (
                SELECT EXISTS (SELECT 1 FROM {number} n WHERE n.phone_number_id IN (SELECT meta_number FROM incoming)
                               AND (n.auto_assign OR EXISTS (SELECT 1 FROM {subscription} s
                                                             WHERE s.org_id = n.org_id AND s.enabled))) AS yes
            ),
            numbered AS (
                SELECT i.*, n.id AS number_pk, n.org_id AS number_org,
                       COALESCE((SELECT c.contact_wa_id FROM {conversation} c
                                 WHERE c.phone_number_id = n.id AND i.lookup_user_id <> ''
                                   AND c.contact_user_id = i.lookup_user_id LIMIT 1),
                                i.contact_wa_id) AS contact_key
                FROM incoming i JOIN {number} n ON n.phone_number_id = i.meta_number
                WHERE NOT (SELECT yes FROM stepped)
            ),
            inserted AS (
                INSERT INTO {message} ({", ".join(quote(c) for c in inserted_columns)})
                SELECT {values} FROM numbered
                ON CONFLICT (wamid) DO NOTHING
                RETURNING "wamid", "org_id", "phone_number_id", "contact_wa_id", "timestamp", "text"
            ),
            touched AS (
                INSERT INTO {conversation} AS c (org_id, phone_number_id, contact_wa_id, contact_user_id,
                                                 contact_name, last_message_at, last_message_text, last_direction,
                                                 external_id, opened_at)
                SELECT DISTINCT ON (m.phone_number_id, m.contact_wa_id)
                       m.org_id, m.phone_number_id, m.contact_wa_id, n.conversation_user_id, n.conversation_name,
                       m.timestamp, left(m.text, 200), %s, n.conversation_id, m.timestamp
                FROM inserted m JOIN numbered n ON n.wamid = m.wamid
                ORDER BY m.phone_number_id, m.contact_wa_id, m.timestamp DESC
                {CONVERSATION_UPSERT}
            ),
            kept AS (
                INSERT INTO {event} (received_at, body, processed_at, error, failed_items, attempts)
                SELECT %s, %s, %s, %s, %s::jsonb, 1 WHERE NOT (SELECT yes FROM stepped) RETURNING id
            )
            SELECT (SELECT yes FROM stepped), (SELECT id FROM kept), (SELECT count(*) FROM inserted),
                   (SELECT count(*) FROM numbered)
        """.split()
        ))  # fmt: skip

    def run(
        self, inbound: Sequence[payloads.InboundMessage], body: str, failed: list[payloads.Failure]
    ) -> tuple[int, int] | None:
        """(event id, messages inserted); None, having written nothing, when one of the numbers' orgs
        has a webhook subscription or one of the numbers assigns automatically: the steps do it."""
        unique = list({m.wamid: m for m in reversed(inbound)}.values())[::-1]  # the first of each wamid
        now, summary = timezone.now(), _failures_told(failed)
        stamp, rows = now.isoformat(), list[dict[str, object]]()
        for m in unique:
            extra = (m.phone_number_id, "" if m.group_id else m.contact_user_id, *_conversation_identity(m),
                     new_public_id("cnv"))  # fmt: skip
            rows.append(self._row(_inbound_values(m, _fallback_key(m, unique)), stamp)
                        | dict(zip(self.EXTRA, extra, strict=True)))  # fmt: skip
        # All rows as one JSON document: one parameter to adapt, where an array per column took 26.
        params: list[str | datetime] = [
            json.dumps(rows),
            Direction.INBOUND,
            now,
            body,
            now,
            summary,
            json.dumps(failed),
        ]
        with transaction.atomic() if connection.in_atomic_block else nullcontext(), connection.cursor() as cursor:
            cursor.execute(self._sql, params)
            stepped, event_id, stored, ours = cursor.fetchone()
        if stepped:  # the outbox's events and the round robin are written by the steps, in their transaction
            return None
        if ours < len(unique):
            logger.warning("webhook %s: %d inbound message(s) for unknown numbers kept raw only", event_id,
                           len(unique) - ours)  # fmt: skip
        return event_id, stored

    def _row(self, values: InboundValues, stamp: str) -> dict[str, object]:
        """The JSON document's row for a message of these field values; the other columns as a new
        Message would have them, without building one (~0.1 ms of a webhook's ~0.6 ms of Python): constant
        defaults prepared once, callable ones called, `auto_now` fields `stamp`. Times as ISO 8601 text,
        which json.dumps writes on its C path, where a `default` would be called back for each."""
        constant, called, stamped = self._defaults
        row = dict(constant)
        row.update((column, _as_json(default())) for column, default in called)
        row.update((column, stamp) for column in stamped)
        row.update((self._column_of[name], _as_json(value)) for name, value in values.items())
        return row

    @cached_property
    def _column_of(self) -> dict[str, str]:
        return {f.name: column_of(f) for f in self._columns}

    @cached_property
    def _defaults(self) -> tuple[dict[str, object], list[tuple[str, Callable[[], object]]], list[str]]:
        """(constant {column: value}, [(column, callable)], [auto_now column]). A column whose default
        is None is left out of the rows: NULL all the same, in a shorter document."""
        constant: dict[str, object] = {}
        called: list[tuple[str, Callable[[], object]]] = []
        stamped: list[str] = []
        for f in self._columns:
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                stamped.append(column_of(f))
            elif f.has_default() and callable(f.default):
                called.append((column_of(f), f.default))
            elif (value := f.get_default()) is not None:
                constant[column_of(f)] = value if isinstance(f, JSONField) else f.get_db_prep_save(value, connection)
        return constant, called, stamped


INBOUND_IN_ONE_STATEMENT = _InboundInOneStatement()
