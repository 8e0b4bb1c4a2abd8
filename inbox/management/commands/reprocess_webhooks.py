from django.core.management.base import BaseCommand, CommandError

from inbox.models import WebhookEvent
from inbox.services.ingest import webhook_reprocess


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
            self.stdout.write(f"event {event.pk} received {event.received_at:%Y-%m-%d %H:%M:%S}: {event.failure[:300]}")
        if list_only:
            self.stdout.write(f"{len(events)} failed event(s).")
            return
        reprocessed, still_failing = webhook_reprocess([event.pk for event in events])
        for pk, reason in still_failing.items():
            self.stderr.write(f"event {pk} still fails: {reason}")
        self.stdout.write(f"Reprocessed {reprocessed} event(s): {reprocessed - len(still_failing)} applied whole.")
        if still_failing:
            raise CommandError(f"{len(still_failing)} event(s) still fail.", returncode=1)
