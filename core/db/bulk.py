"""INSERT ... ON CONFLICT DO NOTHING RETURNING: which rows a bulk insert actually wrote. Django's
`bulk_create(ignore_conflicts=True)` cannot say, and a caller that acts on the rows it inserted (a
conversation for each new message) must not act on a row someone else had already stored."""

from collections.abc import Sequence
from functools import cached_property
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, ForeignObjectRel, Model

Row = TypeVar("Row", bound=Model)


def column_of(field: Field[Any, Any] | ForeignObjectRel) -> str:
    """The column of a concrete field (the only kind these statements name)."""
    assert isinstance(field, Field) and field.column is not None, f"{field} has no column"
    return field.column


def insert_new(objs: Sequence[Row], *, unique_field: str) -> list[Row]:
    """Insert `objs` (one model), skipping those whose `unique_field` value is stored already. Sets the
    primary key of each one inserted and returns them."""
    if not objs:
        return []
    meta = type(objs[0])._meta
    quote = connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    unique_column = column_of(meta.get_field(unique_field))
    by_unique: dict[object, Row] = {}
    for obj in objs:  # the first of duplicates within the batch is the one inserted
        by_unique.setdefault(getattr(obj, unique_field), obj)
    unique_objs = list(by_unique.values())
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    per_statement = len(unique_objs)
    if connection.features.max_query_params:
        per_statement = max(1, connection.features.max_query_params // len(fields))
    inserted: list[Row] = []
    with connection.cursor() as cursor:
        for start in range(0, len(unique_objs), per_statement):
            batch = unique_objs[start : start + per_statement]
            params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in batch for f in fields]
            cursor.execute(
                f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(column_of(f)) for f in fields)}) "
                f"VALUES {', '.join([row] * len(batch))} "
                f"ON CONFLICT ({quote(unique_column)}) DO NOTHING "
                f"RETURNING {quote(column_of(meta.pk))}, {quote(unique_column)}",
                params,
            )
            for pk, unique_value in cursor.fetchall():
                by_unique[unique_value].pk = pk
                inserted.append(by_unique[unique_value])
    return inserted


class InsertRow:
    """One row of `model` inserted by a statement written once per process, returning its primary key:
    an ORM create compiles its statement on every call, which on the webhook's hot path costs more
    than the insert itself (core/db/lookups.py says why). Values are prepared by the model's fields."""

    def __init__(self, model: type[Model], *field_names: str) -> None:
        self.model = model
        self.field_names = field_names

    @cached_property
    def _fields(self) -> list[Field[Any, Any]]:
        return [self.model._meta.get_field(name) for name in self.field_names]  # type: ignore[misc]  # the caller names concrete fields

    @cached_property
    def _sql(self) -> str:
        quote = connection.ops.quote_name
        meta = self.model._meta
        return (
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(column_of(f)) for f in self._fields)}) "
            f"VALUES ({', '.join(['%s'] * len(self._fields))}) RETURNING {quote(column_of(meta.pk))}"
        )

    def execute(self, **values: object) -> int:
        params = [field.get_db_prep_save(values[field.name], connection) for field in self._fields]
        with connection.cursor() as cursor:
            cursor.execute(self._sql, params)
            row = cursor.fetchone()
            assert row is not None  # INSERT ... RETURNING returns its row
            return int(row[0])
