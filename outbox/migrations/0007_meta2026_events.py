"""The event types of Meta's webhook fields beyond `messages` (issue 28): choices only, no schema change."""

from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # it alters two tables the previous release uses (docs/operations/upgrades.md)

    dependencies = [
        ('outbox', '0006_conversation_events'),
    ]

    operations = [
        migrations.AlterField(
            model_name='delivery',
            name='event_type',
            field=models.CharField(choices=[('message.received', 'Message Received'), ('message.status', 'Message Status'), ('message.read', 'Message Read'), ('conversation.assigned', 'Conversation Assigned'), ('conversation.state_changed', 'Conversation State Changed'), ('conversation.note_added', 'Conversation Note Added'), ('message.echo', 'Message Echo'), ('message.history', 'Message History'), ('contact.sync', 'Contact Sync'), ('template.status', 'Template Status'), ('template.category', 'Template Category'), ('template.quality', 'Template Quality'), ('number.quality', 'Number Quality'), ('account.update', 'Account Update')], max_length=32),
        ),
        migrations.AlterField(
            model_name='event',
            name='type',
            field=models.CharField(choices=[('message.received', 'Message Received'), ('message.status', 'Message Status'), ('message.read', 'Message Read'), ('conversation.assigned', 'Conversation Assigned'), ('conversation.state_changed', 'Conversation State Changed'), ('conversation.note_added', 'Conversation Note Added'), ('message.echo', 'Message Echo'), ('message.history', 'Message History'), ('contact.sync', 'Contact Sync'), ('template.status', 'Template Status'), ('template.category', 'Template Category'), ('template.quality', 'Template Quality'), ('number.quality', 'Number Quality'), ('account.update', 'Account Update')], max_length=32),
        ),
    ]
