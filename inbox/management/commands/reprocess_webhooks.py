from django.core.management.base import BaseCommand, CommandError

from inbox.models import WebhookEvent
from inbox.services import webhook_reprocess


class Command(BaseCommand):
    help = (
        "List the webhook events that were not applied whole (an item the database refused, a bug, a "
        "worker that died mid-way) and apply them again. Safe to repeat: a wamid is stored once and "
        "statuses only move up. Exit code 1 when an event still fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("--id", type=int, action="append", dest="ids", help="only this event (repeatable)")
        parser.add_argument(
            "--list", action="store_true", dest="list_only", help="list the failed events, change nothing"
        )
        parser.add_argument("--limit", type=int, default=1000, help="at most this many events (default 1000)")

    def handle(self, *, ids, list_only, limit, **options):
        events = WebhookEvent.objects.failed()
        if ids:
            events = events.filter(pk__in=ids)
        events = list(events.only("pk", "received_at", "processed_at", "error").order_by("pk")[:limit])
        for event in events:
            self.stdout.write(f"event {event.pk} received {event.received_at:%Y-%m-%d %H:%M:%S}: {describe(event)}")
        if list_only:
            self.stdout.write(f"{len(events)} failed event(s).")
            return
        outcome = webhook_reprocess([event.pk for event in events])
        failing = {pk: failed for pk, failed in outcome.items() if failed is None or failed}
        for pk, failed in failing.items():
            reason = "could not be applied (see the log)" if failed is None else "; ".join(f["reason"] for f in failed)
            self.stderr.write(f"event {pk} still fails: {reason}")
        self.stdout.write(f"Reprocessed {len(outcome)} event(s): {len(outcome) - len(failing)} applied whole.")
        if failing:
            raise CommandError(f"{len(failing)} event(s) still fail.", returncode=1)


def describe(event):
    return event.error[:300] if event.error else "not processed (its worker stopped)"
