"""The media Kirim may read from Meta for an org: what it uploaded (a new table) and what it received
(an index on inbound media messages' media id, built CONCURRENTLY on PostgreSQL so webhooks go on
writing meanwhile: a failed build leaves an INVALID index to drop before running this again)."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce

from core.db.migration_steps import indexes_swapped

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
RECEIVED_MEDIA = models.Index(
    Coalesce(*(KT(f"payload__{kind}__id") for kind in MEDIA_TYPES)),
    condition=models.Q(direction="inbound", type__in=MEDIA_TYPES),
    name="message_media_id",
)


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0019_send_message_status"),
    ]

    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    operations = [
        migrations.CreateModel(
            name="UploadedMedia",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("media_id", models.CharField(max_length=255)),
                ("uploaded_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                (
                    "org",
                    models.ForeignKey(
                        db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="inbox.org"
                    ),
                ),
                (
                    "phone_number",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="inbox.phonenumber"
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "uploaded media",
                "constraints": [
                    models.UniqueConstraint(fields=("org", "media_id"), name="uploaded_media_unique_per_org")
                ],
            },
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="message", index=RECEIVED_MEDIA)],
            database_operations=[indexes_swapped("inbox", "message", added=[RECEIVED_MEDIA])],
        ),
    ]
