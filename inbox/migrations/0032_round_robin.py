"""The round robin: a number's setting (off by the database's default) and whose turn was last, and when
staff were last seen in the inbox (expand only: the previous release never reads them, and its new
numbers get the default)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # it alters two tables the previous release uses (docs/operations/upgrades.md)
    dependencies = [
        ("inbox", "0031_audit_team_actions"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="membership",
            name="last_seen_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="phonenumber",
            name="auto_assign",
            field=models.BooleanField(
                db_default=False,
                default=False,
                help_text="Give each new or reopened conversation that nobody has to the next agent of the org who has the inbox open, in turn (round robin).",
                verbose_name="assign new conversations automatically",
            ),
        ),
        migrations.AddField(
            model_name="phonenumber",
            name="auto_assign_last",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
