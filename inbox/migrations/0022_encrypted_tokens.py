"""Meta access tokens encrypted at rest. The column stays text, so this is a change of the model only:
the tokens already stored are left as they are, because the previous release, which goes on serving
while this one rolls out, reads the column as plain text. This release reads a token stored either way
and writes it encrypted; `manage.py reencrypt_secrets`, run once every host runs this release (the
contract step of the upgrade, docs/operations/upgrades.md), encrypts the rest."""

from django.db import migrations

import core.encryption


class Migration(migrations.Migration):
    dependencies = [("inbox", "0021_rate_limit_zero_stops")]

    operations = [
        migrations.AlterField(
            model_name="phonenumber", name="access_token", field=core.encryption.EncryptedTextField()
        ),
    ]
