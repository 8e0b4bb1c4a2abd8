"""What Meta sends in 2026 (issue 28): messages sent from the WhatsApp Business app, edits and
deletions, prices, the templates' quality, the number's quality and limit, account events, contacts
(the app's saved names, blocks) and the price tallies. Expand only: new tables, and new columns that are
nullable or have a database default, so the previous release runs against this schema."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from core.db.migration_steps import permissions_granter

# Both roles see contacts (saved names, blocks); managers block them, and read what Meta tells about the
# account and what messages cost.
ROLE_PERMISSIONS = {
    "Kirim agents": ["view_contact"],
    "Kirim managers": ["view_contact", "block", "view_accountevent", "view_pricetally"],
}

grant_roles = permissions_granter("inbox", ROLE_PERMISSIONS)


class Migration(migrations.Migration):
    # Not one transaction: each ALTER commits on its own, so the migration never holds one table's lock
    # while it waits for another's, which deadlocked with the previous release's webhooks (test_upgrade).
    atomic = False

    dependencies = [
        ('inbox', '0022_team_inbox'),
    ]

    operations = [
        migrations.AddField(
            model_name='message',
            name='deleted_at',
            field=models.DateTimeField(blank=True, help_text='Deleted by its sender: its content is gone from everywhere Kirim kept it', null=True),
        ),
        migrations.AddField(
            model_name='message',
            name='edited_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='message',
            name='edits',
            field=models.JSONField(blank=True, help_text='[{text, until}]: the earlier texts of an edited message', null=True),
        ),
        migrations.AddField(
            model_name='message',
            name='pricing',
            field=models.JSONField(blank=True, help_text="Meta's `pricing` from the message's status webhook", null=True),
        ),
        migrations.AddField(
            model_name='message',
            name='sent_from_app',
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AddField(
            model_name='messagetemplate',
            name='quality_score',
            field=models.CharField(blank=True, db_default='', help_text='GREEN, YELLOW, RED', max_length=16),
        ),
        migrations.AddField(
            model_name='phonenumber',
            name='messaging_limit',
            field=models.CharField(blank=True, db_default='', help_text="Meta's messaging limit tier, e.g. TIER_1K", max_length=32),
        ),
        migrations.AddField(
            model_name='phonenumber',
            name='quality_event',
            field=models.CharField(blank=True, db_default='', help_text="Meta's last quality event: FLAGGED, UNFLAGGED, ...", max_length=32),
        ),
        migrations.AddField(
            model_name='phonenumber',
            name='quality_updated_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name='AccountEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('waba_id', models.CharField(max_length=32, verbose_name='WABA id')),
                ('field', models.CharField(help_text="Meta's webhook field", max_length=64)),
                ('event', models.CharField(blank=True, help_text="Meta's `event`, where it gives one", max_length=64)),
                ('value', models.JSONField(help_text="Meta's `value`, as sent")),
                ('received_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('org', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='inbox.org')),
            ],
            options={
                'indexes': [models.Index(fields=['org', '-received_at'], name='account_event_org_recent')],
            },
        ),
        migrations.CreateModel(
            name='Contact',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('contact_wa_id', models.CharField(help_text="Phone number (wa_id) or business-scoped user id of the contact, or the group's id", max_length=128, verbose_name='contact')),
                ('saved_name', models.CharField(blank=True, help_text='As saved in the WhatsApp Business app', max_length=200)),
                ('blocked', models.BooleanField(default=False)),
                ('blocked_at', models.DateTimeField(blank=True, null=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('org', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='inbox.org')),
                ('phone_number', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='contacts', to='inbox.phonenumber')),
            ],
            options={
                'indexes': [models.Index(condition=models.Q(('blocked', True)), fields=['org', 'blocked'], name='contact_blocked')],
                'constraints': [models.UniqueConstraint(fields=('phone_number', 'contact_wa_id'), name='contact_unique_per_number')],
            },
        ),
        migrations.CreateModel(
            name='PriceTally',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('template_name', models.CharField(blank=True, max_length=512)),
                ('category', models.CharField(blank=True, max_length=32)),
                ('pricing_type', models.CharField(blank=True, max_length=32)),
                ('billable', models.BooleanField()),
                ('messages', models.PositiveIntegerField(default=0)),
                ('org', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='inbox.org')),
                ('phone_number', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='inbox.phonenumber')),
            ],
            options={
                'verbose_name': 'price report',
                'verbose_name_plural': 'price report',
                'constraints': [models.UniqueConstraint(fields=('org', 'day', 'phone_number', 'template_name', 'category', 'pricing_type', 'billable'), name='price_tally_unique')],
            },
        ),
        migrations.CreateModel(
            name="ConversationPriceTally",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField()),
                ("contact_wa_id", models.CharField(max_length=128)),
                ("messages", models.PositiveIntegerField(default=0)),
                ("billable", models.PositiveIntegerField(default=0)),
                ("org", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="inbox.org")),
                ("phone_number", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="inbox.phonenumber")),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("org", "day", "phone_number", "contact_wa_id"), name="conversation_price_tally_unique")],
            },
        ),
        migrations.AlterModelOptions(
            name="conversation",
            options={
                "permissions": (
                    ("mark_read", "Can mark inbound messages read on WhatsApp"),
                    ("reply", "Can reply to contacts on WhatsApp"),
                    ("manage", "Can assign conversations, change their state and labels, and write notes"),
                    ("view_reports", "Can see the inbox's reports"),
                    ("block", "Can block and unblock contacts on WhatsApp"),
                )
            },
        ),
        migrations.RunPython(grant_roles, migrations.RunPython.noop),
    ]
