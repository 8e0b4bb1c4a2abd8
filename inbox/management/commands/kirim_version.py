from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Print the release of Kirim installed here (CHANGELOG.md names each one)."

    def handle(self, **options):
        self.stdout.write(settings.KIRIM_VERSION)
