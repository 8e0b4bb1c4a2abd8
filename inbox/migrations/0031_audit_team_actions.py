"""The audit log names state and label changes of conversations (choices only: no change to the table)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0030_early_status_pricing"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditentry",
            name="action",
            field=models.CharField(
                choices=[
                    ("mark_read", "Marked read"),
                    ("reply", "Replied"),
                    ("note", "Added a note"),
                    ("assignment", "Assigned a conversation"),
                    ("state_changed", "Changed a conversation's state"),
                    ("labels_changed", "Changed a conversation's labels"),
                    ("key_created", "Created an API key"),
                    ("key_rotated", "Rotated an API key"),
                    ("key_revoked", "Revoked an API key"),
                    ("token_changed", "Set a number's Meta token"),
                    ("subscription_changed", "Changed a webhook subscription"),
                    ("member_added", "Added a member"),
                    ("contact_erased", "Erased a contact"),
                    ("contact_blocked", "Blocked or unblocked a contact"),
                ],
                max_length=32,
            ),
        ),
    ]
