"""A trigram index for the admin inbox's search across the text of every message, on PostgreSQL.
Django's `icontains` compares UPPER(text) LIKE UPPER('%term%'): a GIN trigram index on that very
expression answers it without reading the table. pg_trgm is a trusted extension (PostgreSQL 13+): the
database's owner may create it. SQLite has no such index; its LIKE scans, fine at its sizes."""

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS message_text_trgm ON inbox_message USING gin (UPPER(text) gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS message_text_trgm")


class Migration(migrations.Migration):
    dependencies = [("inbox", "0012_inbox_replies")]

    operations = [migrations.RunPython(create, drop)]
