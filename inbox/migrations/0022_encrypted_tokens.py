"""Meta access tokens encrypted at rest, in place: the column stays (text either way); every token is
rewritten encrypted under the first of ENCRYPTION_KEYS. Code of this release reads a token written before
it as well as after, so `manage.py reencrypt_secrets` can finish the job at any time, and running it again
changes nothing. The schema is the previous release's, but not the data: that release would send Meta the
ciphertext, so its processes stop before this migration runs (docs/operations/security.md). Reversed,
the tokens are written back as plain text."""

from django.db import migrations

import core.encryption


def encrypt_tokens(apps, schema_editor):
    core.encryption.reencrypt(apps.get_model("inbox", "PhoneNumber"), ["access_token"])


def decrypt_tokens(apps, schema_editor):
    core.encryption.reencrypt(apps.get_model("inbox", "PhoneNumber"), ["access_token"], decrypted=True)


class Migration(migrations.Migration):
    dependencies = [("inbox", "0021_rate_limit_zero_stops")]

    operations = [
        migrations.AlterField(
            model_name="phonenumber", name="access_token", field=core.encryption.EncryptedTextField()
        ),
        migrations.RunPython(encrypt_tokens, decrypt_tokens),
    ]
