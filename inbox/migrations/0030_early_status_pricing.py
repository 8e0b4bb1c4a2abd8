"""An early status keeps its pricing for its send (expand only: a nullable column the previous release
never reads)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("inbox", "0029_scheduled_jobs")]

    operations = [
        migrations.AddField(model_name="earlystatus", name="pricing", field=models.JSONField(blank=True, null=True)),
    ]
