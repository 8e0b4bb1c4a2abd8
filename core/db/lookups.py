"""Hand-written SQL for the lookups every API request makes. Compiling a queryset costs more than the
query itself: about 0.8 ms of Python per lookup on the 2-core bench machine, most of a read receipt's
overhead over calling Meta (docs/benchmarks.md). The statement here is written once per process."""

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import ForeignKey, Model
from django.db.models.expressions import Col

from core.db.bulk import column_of

Row = TypeVar("Row", bound=Model)
# (position in the row, its column, the converters to apply in turn)
Converters = list[tuple[int, Col, list[Callable[..., Any]]]]


# A fast path, with its plain path and their equivalence test: docs/development/performance.md.
class JoinedRowLookup(Generic[Row]):
    """`model` with the row its foreign key points to, by one unique column: the same instances that
    `model.objects.select_related(foreign_key).filter(column=value).first()` gives, with the field
    converters the ORM would apply (SQLite's datetimes, JSON)."""

    def __init__(self, model: type[Row], foreign_key: str, column: str) -> None:
        self.model = model
        self.foreign_key_name = foreign_key
        self.column_name = column

    @cached_property
    def foreign_key(self) -> ForeignKey[Any, Any]:
        field = self.model._meta.get_field(self.foreign_key_name)
        assert isinstance(field, ForeignKey), f"{self.foreign_key_name} is no foreign key"
        return field

    @cached_property
    def _parts(self) -> tuple[str, str, Converters, tuple[list[str], list[str]]]:
        """Built on first use, when the app registry is ready."""
        connection = connections[DEFAULT_DB_ALIAS]
        quote = connection.ops.quote_name
        child, parent = self.model._meta, self.foreign_key.related_model._meta
        fields = [("c", f) for f in child.concrete_fields] + [("p", f) for f in parent.concrete_fields]
        columns = ", ".join(f"{alias}.{quote(column_of(f))}" for alias, f in fields)
        tables = (
            f"FROM {quote(child.db_table)} c "
            f"JOIN {quote(parent.db_table)} p ON p.{quote(column_of(parent.pk))} = c.{quote(column_of(self.foreign_key))} "
            f"WHERE c.{quote(column_of(child.get_field(self.column_name)))} = %s"
        )
        converters: Converters = []
        for position, (alias, field) in enumerate(fields):
            column = field.get_col(alias)
            functions = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if functions:
                converters.append((position, column, functions))
        names = [f.attname for f in child.concrete_fields], [f.attname for f in parent.concrete_fields]
        return columns, tables, converters, names

    def select(self, extra_column: str | None = None) -> str:
        """The statement; its last placeholder is the column's value. `extra_column` (an SQL
        expression) is selected after the instances' columns, where `instance` ignores it."""
        columns, tables, _, _ = self._parts
        return f"SELECT {columns}{f', {extra_column}' if extra_column else ''} {tables}"

    def get(self, value: str | int) -> Row | None:
        """The instance whose column equals `value`, its parent attached; None when there is none."""
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute(self.select(), [value])
            row = cursor.fetchone()
        return None if row is None else self.instance(row)

    def instance(self, row: Sequence[Any]) -> Row:
        """The instance, its parent attached, from a row of `select()`."""
        _, _, converters, (child_names, parent_names) = self._parts
        connection = connections[DEFAULT_DB_ALIAS]
        values = list(row)
        for position, column, functions in converters:
            for convert in functions:
                values[position] = convert(values[position], column, connection)
        split = len(child_names)
        instance = self.model.from_db(DEFAULT_DB_ALIAS, child_names, values[:split])
        parent_values = values[split : split + len(parent_names)]
        parent = self.foreign_key.related_model.from_db(DEFAULT_DB_ALIAS, parent_names, parent_values)
        self.foreign_key.set_cached_value(instance, parent)
        return instance
