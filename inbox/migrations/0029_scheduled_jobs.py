"""The scheduler's table (expand only: the previous release never reads it)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("inbox", "0028_conversation_ids_unique")]

    operations = [
        migrations.CreateModel(
            name="ScheduledJob",
            fields=[
                ("name", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("period", models.BigIntegerField(default=-1)),
                ("done", models.BooleanField(default=True)),
                ("claim", models.CharField(blank=True, max_length=100)),
                ("leased_until", models.DateTimeField(null=True)),
                ("started_at", models.DateTimeField(null=True)),
                ("finished_at", models.DateTimeField(null=True)),
            ],
        ),
    ]
