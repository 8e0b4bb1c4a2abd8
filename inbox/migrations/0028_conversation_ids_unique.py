import functools

from django.db import migrations

import core.ids


class Migration(migrations.Migration):
    """Conversation ids unique once every conversation has one (0027), in a transaction of its own."""

    dependencies = [
        ("inbox", "0027_fill_conversation_ids"),
    ]

    operations = [
        migrations.AlterField(
            model_name="conversation",
            name="external_id",
            field=core.ids.PublicIdField(
                default=functools.partial(core.ids.new_public_id, *("cnv",), **{}),
                editable=False,
                max_length=32,
                null=True,
                prefix="cnv",
                unique=True,
            ),
        ),
    ]
