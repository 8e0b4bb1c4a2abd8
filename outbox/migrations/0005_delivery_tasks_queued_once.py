"""A delivery says which task is queued or running for it (at most one), and deliveries waiting for a
task are indexed by org for the slots they wait for. Pending deliveries start with none: the sweeper
gives them tasks within their org's slots, and tasks queued before this migration find nothing to
claim and end."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('inbox', '0018_index_diet'),
        ('outbox', '0004_receivers_and_streaks_by_event_type'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='delivery',
            name='delivery_pending_due',
        ),
        migrations.AddField(
            model_name='delivery',
            name='queued_at',
            field=models.DateTimeField(blank=True, help_text='When that task was queued', null=True),
        ),
        migrations.AddField(
            model_name='delivery',
            name='task_id',
            field=models.CharField(blank=True, help_text='The task queued or running for it, if any', max_length=64),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(condition=models.Q(('status', 'pending'), ('task_id', '')), fields=['org', 'subscription', 'next_attempt_at'], name='delivery_waiting'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(condition=models.Q(('status', 'pending'), models.Q(('task_id', ''), _negated=True)), fields=['org'], name='delivery_queued'),
        ),
    ]
