"""Fewer index writes per message: each inbound message is inserted into every index of the message
table and, since it moves last_message_at, into every index of its conversation's row. Dropped: the
foreign keys' own indexes where a composite index leads with the same column, full indexes on
foreign keys that inbound messages leave NULL (partial ones now), and on PostgreSQL the
varchar_pattern_ops indexes Django adds beside the unique wamid and external_id for LIKE 'prefix%',
which no query here asks (the admin's "=" search is a case-insensitive match)."""

from django.conf import settings
from django.db import migrations, models
from django.db.models.deletion import CASCADE, SET_NULL

from core.db.migration_steps import indexes_swapped


def without_own_index(model_name, name, to, *, on_delete=CASCADE, related_name="+", **options):
    """The foreign key as the model now has it, without its own index; for the state only, as the
    database side is indexes_swapped's."""
    field = models.ForeignKey(to, on_delete=on_delete, related_name=related_name, db_index=False, **options)
    return migrations.AlterField(model_name=model_name, name=name, field=field)


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
                without_own_index("conversation", "org", "inbox.org"),
                without_own_index("conversation", "phone_number", "inbox.phonenumber", related_name="conversations"),
                without_own_index("message", "phone_number", "inbox.phonenumber", related_name="messages"),
                *(
                    without_own_index("message", name, to, on_delete=SET_NULL, null=True, blank=True, **options)
                    for name, to, options in (
                        ("read_by_user", settings.AUTH_USER_MODEL, {}),
                        ("read_by_key", "inbox.apikey", {}),
                        ("idempotency_record", "inbox.idempotencyrecord", {"editable": False}),
                    )
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
