from django.core.management.base import BaseCommand

from core.encryption import reencrypt
from inbox.models import PhoneNumber
from outbox.models import WebhookSubscription


class Command(BaseCommand):
    help = (
        "Rewrite every Meta access token and subscription secret under the first key of ENCRYPTION_KEYS "
        "(and encrypt any still stored in plain text, as releases before 1.0.0 wrote them). Run it once every "
        "host runs 1.0.0 or later, and after putting a new key first; once it has run, the keys after the "
        "first may be removed. Running it again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--plain", action="store_true",
            help="write them back in plain text instead, before rolling back to a release before 1.0.0",
        )  # fmt: skip

    def handle(self, *, plain, **options):
        numbers = reencrypt(PhoneNumber, PhoneNumber.secret_fields, decrypted=plain)
        subscriptions = reencrypt(WebhookSubscription, WebhookSubscription.secret_fields, decrypted=plain)
        done = "Wrote in plain text" if plain else "Re-encrypted"
        self.stdout.write(f"{done} the secrets of {numbers} phone numbers and {subscriptions} subscriptions.")
