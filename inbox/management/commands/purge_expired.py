from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from inbox.models import (
    UPLOADED_MEDIA_LIFETIME,
    AuditEntry,
    AuthFailureWindow,
    EarlyStatus,
    IdempotencyRecord,
    RateLimitWindow,
    UploadedMedia,
    WebhookEvent,
)
from inbox.services.erasure import message_content_expire
from inbox.services.send import cut_off_sends_unconfirm
from inbox.services.statuses import early_statuses_apply
from orgs.ratelimit import WINDOW_SECONDS
from outbox.delivery import ensure_sweeper
from outbox.services import deliveries_purge


class Command(BaseCommand):
    help = (
        "Apply delivery statuses whose send has stored its wamid since they arrived, mark sends whose "
        "request died during Meta's call unconfirmed, then delete what "
        "has served its time: idempotency records past 24 hours, rate-limit and failed-authentication "
        "windows past their minute, statuses for unknown wamids after a day, applied webhook bodies older than "
        "WEBHOOK_EVENTS_KEEP_DAYS, failed ones (not reprocessed) older than WEBHOOK_FAILED_EVENTS_KEEP_DAYS, "
        "and finished webhook deliveries (dead letters too) with their events older than "
        "WEBHOOK_DELIVERIES_KEEP_DAYS, uploaded media ids past Meta's 30 days and audit entries older than AUDIT_LOG_KEEP_DAYS; first it erases the content of messages past MESSAGE_CONTENT_RETENTION_DAYS (or their org's period). It says how many failed webhook bodies are kept. Run it from "
        "cron, e.g. every 10 minutes; it is safe to run at any time and from several hosts."
    )

    def handle(self, **options):
        applied = early_statuses_apply()
        unconfirmed = cut_off_sends_unconfirm()
        now = timezone.now()
        old_deliveries, old_events = deliveries_purge(now)
        ensure_sweeper()  # restarts the delivery sweeper if its chain died with a worker
        current_minute = int(now.timestamp() // WINDOW_SECONDS)
        erased = message_content_expire(now)
        deleted = {
            "idempotency records": IdempotencyRecord.objects.filter(expires_at__lte=now).delete()[0],
            "rate-limit windows": RateLimitWindow.objects.filter(minute__lt=current_minute - 1).delete()[0],
            "failed-authentication windows": AuthFailureWindow.objects.filter(minute__lt=current_minute - 1).delete()[
                0
            ],
            "webhook events": WebhookEvent.objects.applied()
            .filter(received_at__lt=now - timedelta(days=settings.WEBHOOK_EVENTS_KEEP_DAYS))
            .delete()[0],
            "failed webhook events": WebhookEvent.objects.failed(now)
            .filter(received_at__lt=now - timedelta(days=settings.WEBHOOK_FAILED_EVENTS_KEEP_DAYS))
            .delete()[0],
            # A status whose send never stored its wamid within a day belongs to no message of ours.
            "early statuses": EarlyStatus.objects.filter(received_at__lt=now - timedelta(days=1)).delete()[0],
            "finished webhook deliveries (dead letters included)": old_deliveries,
            "events out": old_events,
            "uploaded media ids": UploadedMedia.objects.filter(uploaded_at__lt=now - UPLOADED_MEDIA_LIFETIME).delete()[
                0
            ],
            "audit log entries": AuditEntry.objects.filter(
                at__lt=now - timedelta(days=settings.AUDIT_LOG_KEEP_DAYS)
            ).delete()[0],
        }
        failed = WebhookEvent.objects.failed(now).count()
        self.stdout.write(
            f"Applied {applied} early status(es); {unconfirmed} cut-off send(s) now unconfirmed; the content of "
            f"{erased} message(s) past its retention period erased. Deleted "
            + ", ".join(f"{n} {what}" for what, n in deleted.items())
            + f". {failed} failed webhook event(s) kept for `reprocess_webhooks`"
            + f" (up to WEBHOOK_FAILED_EVENTS_KEEP_DAYS={settings.WEBHOOK_FAILED_EVENTS_KEEP_DAYS} days)."
        )
