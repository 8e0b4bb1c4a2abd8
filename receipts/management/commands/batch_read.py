"""`manage.py batch_read`: mark many inbound messages read at once, one receipt per conversation,
through the same receipts service as the API and the admin."""

import contextlib
import json
import re
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from inbox.models import AuditAction, Message, Org, PhoneNumber, ReadVia
from orgs.audit import audit_record
from receipts.services.bulk import messages_mark_read

DURATION = re.compile(r"^(\d+)([smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_CONCURRENCY = 64
EXIT_FAILED = 1
EXIT_BAD_ARGUMENTS = 2


def bad_arguments(message):
    return CommandError(message, returncode=EXIT_BAD_ARGUMENTS)


def parse_duration(text):
    match = DURATION.match(text.strip())
    if not match:
        raise bad_arguments(f"--older-than {text!r}: write a number and a unit, like 30m, 2h, 3d or 1w.")
    return timedelta(**{UNITS[match[2]]: int(match[1])})


def parse_instant(text):
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise bad_arguments(f"--before {text!r}: write an ISO-8601 time, like 2026-11-01T08:00:00+07:00.") from None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


class Progress:
    """A progress bar on a terminal; a plain line every few seconds otherwise (logs, cron)."""

    EVERY_SECONDS = 5

    def __init__(self, stream):
        self.stream = stream
        self.interactive = stream.isatty()
        self.lock = threading.Lock()
        self.while_running = contextlib.ExitStack()

    def start(self, total):
        self.total, self.done, self.began, self.last_line = total, 0, time.monotonic(), 0.0
        self.bar = None
        if self.interactive:
            # Log lines go through tqdm while the bar runs: printed above it, never into its line.
            self.while_running.enter_context(logging_redirect_tqdm())
            self.bar = self.while_running.enter_context(tqdm(total=total, unit="conv", file=self.stream))

    def step(self):
        with self.lock:
            self.done += 1
            if self.bar is not None:
                self.bar.update()
                return
            now = time.monotonic()
            if now - self.last_line >= self.EVERY_SECONDS or self.done == self.total:
                self.last_line = now
                rate = self.done / max(now - self.began, 1e-9)
                eta = (self.total - self.done) / rate if rate else 0
                self.stream.write(f"batch_read: {self.done}/{self.total} conversations, {rate:.1f}/s, ETA {eta:.0f}s\n")
                self.stream.flush()

    def close(self):
        self.while_running.close()


class Command(BaseCommand):
    help = (
        "Mark inbound messages read in bulk: one read receipt per conversation (its newest selected "
        "unread message), earlier ones read with it. Needs a scope, or --all. Exit 0 when every "
        "conversation succeeded, 1 when any failed or the run was stopped, 2 for bad arguments."
    )

    def add_arguments(self, parser):
        scope = parser.add_argument_group("scope (at least one, or --all)")
        scope.add_argument("--org", metavar="SLUG")
        scope.add_argument("--phone-number-id", action="append", default=[], metavar="ID", help="repeatable")
        scope.add_argument("--contact", metavar="WA_ID")
        scope.add_argument("--before", metavar="ISO-8601", help="messages sent before this time")
        scope.add_argument("--older-than", metavar="DURATION", help="messages older than this, like 2h or 3d")
        scope.add_argument("--all", action="store_true", help="every unread inbound message, on purpose")
        parser.add_argument("--dry-run", action="store_true", help="count what would happen; change nothing")
        parser.add_argument("--concurrency", type=int, default=8, help=f"Meta calls in flight, 1 to {MAX_CONCURRENCY}")
        parser.add_argument("--limit", type=int, metavar="N", help="at most N conversations this run")
        parser.add_argument(
            "--mark-expired-locally",
            action="store_true",
            help=f"read messages past the {settings.READ_RECEIPT_WINDOW_DAYS}-day receipt window here, without a receipt",
        )
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    def handle(self, **options):
        messages = self.selection(options)
        if not 1 <= options["concurrency"] <= MAX_CONCURRENCY:
            raise bad_arguments(f"--concurrency must be 1 to {MAX_CONCURRENCY}.")
        if options["limit"] is not None and options["limit"] < 1:
            raise bad_arguments("--limit must be 1 or more.")

        stop = threading.Event()
        in_main_thread = threading.current_thread() is threading.main_thread()  # where signals can be caught
        if in_main_thread:
            previous = signal.signal(signal.SIGINT, lambda *_: stop.set())  # Ctrl-C: finish the calls in flight
        progress = Progress(sys.stderr)
        orgs = list(messages.order_by().values_list("org_id", flat=True).distinct())
        began = time.monotonic()
        try:
            result = messages_mark_read(
                messages=messages,
                via=ReadVia.BATCH,
                concurrency=options["concurrency"],
                receipt_cutoff=timezone.now() - timedelta(days=settings.READ_RECEIPT_WINDOW_DAYS),
                mark_expired_locally=options["mark_expired_locally"],
                dry_run=options["dry_run"],
                max_conversations=options["limit"],
                stop=stop,
                progress=progress,
            )
        finally:
            if in_main_thread:
                signal.signal(signal.SIGINT, previous)
            progress.close()
        if result.read and not options["dry_run"]:
            for org in orgs:
                audit_record(None, AuditAction.MARK_READ, org=org, target=f"{result.conversations} conversation(s)",
                             detail=f"{result.read} message(s) by batch_read")  # fmt: skip
        self.report(result, dry_run=options["dry_run"], seconds=time.monotonic() - began, as_json=options["json"])
        if result.failures or result.stopped:
            sys.exit(EXIT_FAILED)

    def selection(self, options):
        scoped = any(options[name] for name in ("org", "phone_number_id", "contact", "before", "older_than"))
        if not scoped and not options["all"]:
            raise bad_arguments(
                "Say which messages: --org, --phone-number-id, --contact, --before or --older-than, "
                "or --all to mark every unread inbound message read."
            )
        messages = Message.objects.unread_inbound()
        if options["org"]:
            org = Org.objects.filter(slug=options["org"]).first()
            if org is None:
                raise bad_arguments(f"No org with slug {options['org']!r}: see the Orgs page in the admin.")
            messages = messages.filter(org=org)
        if options["phone_number_id"]:
            numbers = PhoneNumber.objects.filter(phone_number_id__in=options["phone_number_id"])
            if options["org"]:
                numbers = numbers.filter(org__slug=options["org"])
            unknown = set(options["phone_number_id"]) - set(numbers.values_list("phone_number_id", flat=True))
            if unknown:
                raise bad_arguments(f"Unknown phone number id(s) {', '.join(sorted(unknown))} for this scope.")
            messages = messages.filter(phone_number__in=numbers)
        if options["contact"]:
            messages = messages.filter(contact_wa_id=options["contact"])
        if options["before"]:
            messages = messages.filter(timestamp__lt=parse_instant(options["before"]))
        if options["older_than"]:
            messages = messages.filter(timestamp__lt=timezone.now() - parse_duration(options["older_than"]))
        return messages

    def report(self, result, *, dry_run, seconds, as_json):
        if as_json:
            summary = {
                "dry_run": dry_run,
                "messages_read": result.read,
                "conversations": result.conversations,
                "meta_calls": result.meta_calls,
                "read_locally": result.read_locally,
                "skipped": dict(result.skipped),
                "failed": [{"conversation": label, "meta_message": message} for label, message in result.failures],
                "stopped": result.stopped,
                "seconds": round(seconds, 3),
            }
            self.stdout.write(json.dumps(summary, indent=2))
            return
        would = "would " if dry_run else ""
        self.stdout.write(
            f"batch_read{' (dry run)' if dry_run else ''}: {would}read {result.read} message(s) in "
            f"{result.conversations} conversation(s) with {result.meta_calls} Meta call(s) in {seconds:.1f}s"
        )
        if result.read_locally:
            self.stdout.write(f"  {would}read here only, past the receipt window: {result.read_locally}")
        for reason, count in sorted(result.skipped.items()):
            self.stdout.write(f"  skipped {count}: {reason}")
        for label, message in result.failures:
            self.stderr.write(f"  failed, left unread: {label}: {message}")
        if result.stopped:
            self.stderr.write("  stopped before the end: run the same command again to finish")
