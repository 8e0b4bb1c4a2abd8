"""Subscription signing secrets encrypted at rest, in place, as inbox's 0022 does for Meta tokens. The
columns widen from varchar(100) to text, which PostgreSQL does without rewriting the table."""

from django.db import migrations

import core.encryption
import outbox.models

SECRETS = ["secret", "previous_secret"]


def encrypt_secrets(apps, schema_editor):
    core.encryption.reencrypt(apps.get_model("outbox", "WebhookSubscription"), SECRETS)


def decrypt_secrets(apps, schema_editor):
    core.encryption.reencrypt(apps.get_model("outbox", "WebhookSubscription"), SECRETS, decrypted=True)


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
        migrations.RunPython(encrypt_secrets, decrypt_secrets),
    ]
