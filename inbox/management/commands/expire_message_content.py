from django.core.management.base import BaseCommand

from inbox.services.erasure import message_content_expire


class Command(BaseCommand):
    help = (
        "Erase the content of messages older than MESSAGE_CONTENT_RETENTION_DAYS (or their org's own period). "
        "For the scheduler; purge_expired does it too. Running it again changes nothing."
    )

    def handle(self, **options):
        self.stdout.write(f"Erased the content of {message_content_expire()} message(s) past their retention period.")
