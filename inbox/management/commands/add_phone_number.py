import os
import re
import sys

from django.core.management.base import BaseCommand, CommandError

from inbox.management.orgs import org_by_slug
from inbox.models import PhoneNumber


class Command(BaseCommand):
    help = (
        "Connect a WhatsApp business number to an org. The Meta access token is read from "
        "META_ACCESS_TOKEN or, with --access-token-stdin, from standard input; never from arguments, "
        "which other users can see in the process list."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="org slug")
        parser.add_argument("--phone-number-id", required=True, help="Meta's phone number id")
        parser.add_argument("--display-phone-number", required=True)
        parser.add_argument("--waba-id", default="")
        parser.add_argument("--access-token-stdin", action="store_true")

    def handle(self, *, org, phone_number_id, display_phone_number, waba_id, access_token_stdin, **options):
        if not re.fullmatch(r"[0-9]{6,20}", phone_number_id):
            raise CommandError("--phone-number-id is Meta's numeric id: 6 to 20 digits.")
        token = sys.stdin.readline().strip() if access_token_stdin else os.environ.get("META_ACCESS_TOKEN", "")
        if not token:
            raise CommandError("No access token: set META_ACCESS_TOKEN or pipe it in with --access-token-stdin.")
        owner = org_by_slug(org)
        if PhoneNumber.objects.filter(phone_number_id=phone_number_id).exists():
            raise CommandError(f"Phone number id {phone_number_id} is connected already.")
        PhoneNumber.objects.create(
            org=owner,
            phone_number_id=phone_number_id,
            display_phone_number=display_phone_number,
            waba_id=waba_id,
            access_token=token,
        )
        self.stdout.write(f"Connected {display_phone_number} ({phone_number_id}) to {owner.slug}.")
