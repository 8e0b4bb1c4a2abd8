"""Subscriptions say what their receiver parses (`receiver`), and failures count per event type.

Existing subscriptions go on receiving exactly the event types they list: one that lists an event in
Kirim's envelope asked for it, so it becomes a `kirim` receiver; the others, Meta's JSON only, become
`meta` receivers. A streak counted across event types cannot be split by type, so each type's streak
starts at zero (no subscription is disabled sooner than before), and a subscription Kirim disabled
stays disabled, with its reason."""

from django.db import migrations, models

KIRIMS_OWN_EVENTS = {"message.read"}  # as of this migration: events in Kirim's envelope


def receivers_from_events(apps, schema_editor):
    subscriptions = apps.get_model("outbox", "WebhookSubscription").objects
    asked_for_more = [s.pk for s in subscriptions.only("events") if KIRIMS_OWN_EVENTS & set(s.events)]
    subscriptions.filter(pk__in=asked_for_more).update(receiver="kirim")


class Migration(migrations.Migration):
    dependencies = [("outbox", "0003_grant_managers")]

    operations = [
        migrations.AddField(
            model_name="webhooksubscription",
            name="receiver",
            field=models.CharField(
                choices=[
                    ("meta", "A handler written for Meta's webhooks: Meta's JSON only"),
                    ("kirim", "Reads Kirim's envelope too"),
                ],
                default="meta",
                max_length=8,
            ),
        ),
        migrations.RunPython(receivers_from_events, migrations.RunPython.noop),
        migrations.AddField(
            model_name="webhooksubscription",
            name="failure_streaks",
            field=models.JSONField(default=dict, editable=False, help_text="Failed deliveries in a row, by type"),
        ),
        migrations.AddField(
            model_name="webhooksubscription",
            name="disabled_events",
            field=models.JSONField(default=dict, editable=False, help_text="Event types Kirim stopped, and why"),
        ),
        migrations.RemoveField(model_name="webhooksubscription", name="consecutive_failures"),
    ]
