from django.db import migrations


def backfill(apps, schema_editor):
    """One inbox row per (number, contact) that already has messages, from its newest message."""
    Message = apps.get_model("inbox", "Message")
    Conversation = apps.get_model("inbox", "Conversation")
    newest, names = {}, {}
    for message in Message.objects.order_by("timestamp", "pk").iterator(chunk_size=2000):
        key = (message.phone_number_id, message.contact_wa_id)
        newest[key] = message
        names[key] = message.contact_name or names.get(key, "")
    Conversation.objects.bulk_create(
        [
            Conversation(
                org_id=m.org_id,
                phone_number_id=m.phone_number_id,
                contact_wa_id=m.contact_wa_id,
                contact_name=names[key],
                last_message_at=m.timestamp,
                last_message_text=m.text[:200],
                last_direction=m.direction,
            )
            for key, m in newest.items()
        ],
        batch_size=1000,
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [("inbox", "0004_conversation")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
