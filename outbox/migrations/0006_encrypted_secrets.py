"""Subscription signing secrets encrypted at rest, as inbox's 0022 does for Meta tokens: the columns
widen from varchar(100) to text (PostgreSQL does it without rewriting the table), and the secrets
already stored stay as the previous release wrote them until `manage.py reencrypt_secrets` runs, once
every host runs this release."""

from django.db import migrations

import core.encryption
import outbox.models


class Migration(migrations.Migration):
    dependencies = [("outbox", "0005_delivery_tasks_queued_once")]

    operations = [
        migrations.AlterField(
            model_name="webhooksubscription",
            name="previous_secret",
            field=core.encryption.EncryptedTextField(blank=True, editable=False),
        ),
        migrations.AlterField(
            model_name="webhooksubscription",
            name="secret",
            field=core.encryption.EncryptedTextField(default=outbox.models.new_secret, editable=False),
        ),
    ]
