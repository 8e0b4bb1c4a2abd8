"""Hand-written SQL for the lookups every API request makes. Compiling a queryset costs more than the
query itself: about 0.8 ms of Python per lookup on the 2-core bench machine, most of a read receipt's
overhead over calling Meta (docs/benchmarks.md). The statement here is written once per process."""

from functools import cached_property

from django.db import DEFAULT_DB_ALIAS, connections


class JoinedRowLookup:
    """`model` with the row its foreign key points to, by one unique column: the same instances that
    `model.objects.select_related(foreign_key).filter(column=value).first()` gives, with the field
    converters the ORM would apply (SQLite's datetimes, JSON)."""

    def __init__(self, model, foreign_key, column):
        self.model = model
        self.foreign_key_name = foreign_key
        self.column_name = column

    @cached_property
    def foreign_key(self):
        return self.model._meta.get_field(self.foreign_key_name)

    @cached_property
    def _statement(self):
        """Built on first use, when the app registry is ready."""
        connection = connections[DEFAULT_DB_ALIAS]
        quote = connection.ops.quote_name
        child, parent = self.model._meta, self.foreign_key.related_model._meta
        child_fields, parent_fields = child.concrete_fields, parent.concrete_fields
        columns = [f"c.{quote(f.column)}" for f in child_fields] + [f"p.{quote(f.column)}" for f in parent_fields]
        sql = (
            f"SELECT {', '.join(columns)} FROM {quote(child.db_table)} c "
            f"JOIN {quote(parent.db_table)} p ON p.{quote(parent.pk.column)} = c.{quote(self.foreign_key.column)} "
            f"WHERE c.{quote(child.get_field(self.column_name).column)} = %s"
        )
        converters = []
        for position, (alias, field) in enumerate([("c", f) for f in child_fields] + [("p", f) for f in parent_fields]):
            column = field.get_col(alias)
            functions = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if functions:
                converters.append((position, column, functions))
        names = ([f.attname for f in child_fields], [f.attname for f in parent_fields])
        return sql, converters, names

    def get(self, value):
        """The instance whose column equals `value`, its parent attached; None when there is none."""
        sql, converters, (child_names, parent_names) = self._statement
        connection = connections[DEFAULT_DB_ALIAS]
        with connection.cursor() as cursor:
            cursor.execute(sql, [value])
            row = cursor.fetchone()
        if row is None:
            return None
        row = list(row)
        for position, column, functions in converters:
            for convert in functions:
                row[position] = convert(row[position], column, connection)
        split = len(child_names)
        instance = self.model.from_db(DEFAULT_DB_ALIAS, child_names, row[:split])
        parent = self.foreign_key.related_model.from_db(DEFAULT_DB_ALIAS, parent_names, row[split:])
        self.foreign_key.set_cached_value(instance, parent)
        return instance
