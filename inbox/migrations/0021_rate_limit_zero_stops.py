"""An org's `rate_limit_per_minute` of 0 now refuses every request (it used to mean the default, as
empty does). Orgs that hold 0 today have been served at the default all along, and turning them off
on deploy would be an outage nobody asked for: they become empty, keeping what they had. An operator
who set 0 to stop an org sets it again."""

from django.db import migrations, models


def zero_to_default(apps, schema_editor):
    Org = apps.get_model("inbox", "Org")
    Org.objects.filter(rate_limit_per_minute=0).update(rate_limit_per_minute=None)


class Migration(migrations.Migration):
    dependencies = [("inbox", "0020_media")]

    operations = [
        migrations.RunPython(zero_to_default, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="org",
            name="rate_limit_per_minute",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="API requests a minute; empty: the RATE_LIMIT_PER_MINUTE setting; 0: none (every request is refused)",
                null=True,
            ),
        ),
    ]
