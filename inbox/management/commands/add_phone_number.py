import os
import sys

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApiError
from inbox.management.orgs import org_by_slug
from inbox.services.numbers import phone_number_confirm, phone_number_connect


class Command(BaseCommand):
    help = (
        "Connect a WhatsApp business number to an org, once Meta confirms that the access token can act "
        "for it (and that it is a number of --waba-id, when given). The Meta access token is read from "
        "META_ACCESS_TOKEN or, with --access-token-stdin, from standard input; never from arguments, "
        "which other users can see in the process list."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="org slug")
        parser.add_argument("--phone-number-id", required=True, help="Meta's phone number id")
        parser.add_argument("--display-phone-number", default="", help="default: as Meta displays the number")
        parser.add_argument("--waba-id", default="")
        parser.add_argument("--access-token-stdin", action="store_true")

    def handle(self, *, org, phone_number_id, display_phone_number, waba_id, access_token_stdin, **options):
        token = sys.stdin.readline().strip() if access_token_stdin else os.environ.get("META_ACCESS_TOKEN", "")
        if not token:
            raise CommandError("No access token: set META_ACCESS_TOKEN or pipe it in with --access-token-stdin.")
        owner = org_by_slug(org)
        try:
            confirmation = phone_number_confirm(phone_number_id=phone_number_id, access_token=token, waba_id=waba_id)
            number = phone_number_connect(
                org=owner, confirmation=confirmation, display_phone_number=display_phone_number
            )
        except ApiError as error:
            raise CommandError(error.message) from None
        name = f", {confirmation.verified_name} on WhatsApp" if confirmation.verified_name else ""
        self.stdout.write(f"Connected {number.display_phone_number} ({number.phone_number_id}{name}) to {owner.slug}.")
