from django.db import migrations, models

import core.ids

BATCH = 2000


def fill_conversation_ids(apps, schema_editor):
    Conversation = apps.get_model("inbox", "Conversation")
    while pks := list(Conversation.objects.filter(external_id__isnull=True).values_list("pk", flat=True)[:BATCH]):
        Conversation.objects.bulk_update(
            [Conversation(pk=pk, external_id=core.ids.new_public_id("cnv")) for pk in pks], ["external_id"]
        )
    # The cycle each conversation is in: from its last message when the contact wrote last.
    Conversation.objects.filter(last_direction="inbound").update(opened_at=models.F("last_message_at"))


class Migration(migrations.Migration):
    """The ids and cycles of the conversations there are, in a migration of their own: PostgreSQL
    refuses to index or alter a table in the transaction that just updated its rows while their
    constraint checks wait, and 0022 adds the columns (and their indexes, made at its end)."""

    dependencies = [
        ("inbox", "0026_meta2026"),
    ]

    operations = [
        migrations.RunPython(fill_conversation_ids, migrations.RunPython.noop, elidable=True),
    ]
