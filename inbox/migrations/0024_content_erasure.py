"""Erasure and retention: when a message's content was erased, and an org's own retention period. Both
nullable, added without a default: PostgreSQL adds them without rewriting the messages table, and the
previous release never reads them."""

from django.db import migrations, models


class Migration(migrations.Migration):
    # Not one transaction: each ALTER commits on its own, so the migration never holds one table's lock
    # while it waits for another's, which deadlocked with the previous release's webhooks (test_upgrade).
    atomic = False
    dependencies = [("inbox", "0023_api_key_scopes")]

    operations = [
        migrations.AddField(
            model_name="message",
            name="content_erased_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="org",
            name="message_content_retention_days",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Days message content (text, media references) is kept; empty: the "
                "MESSAGE_CONTENT_RETENTION_DAYS setting. Counts, ids and statuses stay.",
                null=True,
            ),
        ),
    ]
