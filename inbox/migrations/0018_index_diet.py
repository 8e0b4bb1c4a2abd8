"""Fewer index writes per message: each inbound message is inserted into every index of the message
table and, since it moves last_message_at, into every index of its conversation's row. Dropped: the
foreign keys' own indexes where a composite index leads with the same column, full indexes on
foreign keys that inbound messages leave NULL (partial ones now), and on PostgreSQL the
varchar_pattern_ops indexes Django adds beside the unique wamid and external_id for LIKE 'prefix%',
which no query here asks (the admin's "=" search is a case-insensitive match)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from kirim.migration_steps import indexes_swapped

READ_AND_SEND_KEYS = [
    models.Index(fields=[field], condition=models.Q((f"{field}__isnull", False)), name=f"message_{field}")
    for field in ("read_by_user", "read_by_key", "idempotency_record")
]


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0017_auth_failure_windows"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    atomic = False  # CREATE and DROP INDEX CONCURRENTLY run outside a transaction

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="conversation",
                    name="org",
                    field=models.ForeignKey(
                        db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="inbox.org"
                    ),
                ),
                migrations.AlterField(
                    model_name="conversation",
                    name="phone_number",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="conversations",
                        to="inbox.phonenumber",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="idempotency_record",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        editable=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="inbox.idempotencyrecord",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="phone_number",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="inbox.phonenumber",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="read_by_key",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="inbox.apikey",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="read_by_user",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                *(migrations.AddIndex(model_name="message", index=index) for index in READ_AND_SEND_KEYS),
            ],
            database_operations=[
                indexes_swapped(
                    "inbox",
                    "message",
                    own=("phone_number", "read_by_user", "read_by_key", "idempotency_record"),
                    like=("wamid", "external_id"),
                    added=READ_AND_SEND_KEYS,
                ),
                indexes_swapped("inbox", "conversation", own=("org", "phone_number")),
            ],
        ),
    ]
