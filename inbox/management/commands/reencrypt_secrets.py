from django.core.management.base import BaseCommand

from core.encryption import reencrypt
from inbox.models import PhoneNumber
from outbox.models import WebhookSubscription


class Command(BaseCommand):
    help = (
        "Rewrite every Meta access token and subscription secret under the first key of ENCRYPTION_KEYS "
        "(and encrypt any still stored in plain text). Run it after putting a new key first; once it has "
        "run, the keys after the first may be removed. Running it again changes nothing."
    )

    def handle(self, **options):
        numbers = reencrypt(PhoneNumber, PhoneNumber.secret_fields)
        subscriptions = reencrypt(WebhookSubscription, WebhookSubscription.secret_fields)
        self.stdout.write(f"Re-encrypted the secrets of {numbers} phone numbers and {subscriptions} subscriptions.")
