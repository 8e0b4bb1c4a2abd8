from django.core.management.base import BaseCommand, CommandError

from core.errors import ApiError
from inbox.models import PhoneNumber
from inbox.services.replies import templates_sync_each


class Command(BaseCommand):
    help = (
        "Fetch the message templates of the numbers' WhatsApp Business Accounts from Meta, so agents can "
        "reply with an approved one outside the 24-hour window. Exit code 1 when any account failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", help="org slug: its numbers")
        parser.add_argument("--phone-number-id", action="append", default=[], help="repeatable")

    def handle(self, *, org, phone_number_id, **options):
        numbers = PhoneNumber.objects.exclude(waba_id="").order_by("pk")
        if org:
            numbers = numbers.filter(org__slug=org)
        if phone_number_id:
            numbers = numbers.filter(phone_number_id__in=phone_number_id)
        outcomes = templates_sync_each(numbers)
        if not outcomes:
            raise CommandError("No matching number has a WABA id.")
        failed = 0
        for number, outcome in outcomes:
            if isinstance(outcome, ApiError):
                failed += 1
                self.stderr.write(f"{number}: {outcome.message}")
            else:
                self.stdout.write(outcome.summary())
        if failed:
            raise SystemExit(1)
