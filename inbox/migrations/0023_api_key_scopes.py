"""API key scopes. Every existing key gets all of them, and so does a key the previous release creates
during the upgrade (the database's default): no key loses access it had."""

from django.db import migrations, models

ALL_SCOPES = "messages:read messages:send messages:mark_read subscriptions:manage conversations:manage media"


class Migration(migrations.Migration):
    dependencies = [("inbox", "0022_encrypted_tokens")]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="scopes",
            field=models.CharField(db_default=ALL_SCOPES, default=ALL_SCOPES, max_length=200),
        ),
    ]
