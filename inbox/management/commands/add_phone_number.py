import os
import sys

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApiError
from inbox.management.orgs import org_by_slug
from inbox.models import AuditAction
from inbox.services.numbers import phone_number_confirm, phone_number_connect, phone_number_replace_token
from orgs.audit import audit_record


class Command(BaseCommand):
    help = (
        "Connect a WhatsApp business number to an org, once Meta confirms that the access token can act "
        "for it (and that it is a number of --waba-id, when given). The Meta access token is read from "
        "META_ACCESS_TOKEN or, with --access-token-stdin, from standard input; never from arguments, "
        "which other users can see in the process list. With --replace-token, the number is connected already "
        "and the token, once Meta confirms it, replaces its own (rotating a Meta token)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="org slug")
        parser.add_argument("--phone-number-id", required=True, help="Meta's phone number id")
        parser.add_argument("--display-phone-number", default="", help="default: as Meta displays the number")
        parser.add_argument("--waba-id", default="")
        parser.add_argument("--access-token-stdin", action="store_true")
        parser.add_argument("--replace-token", action="store_true", help="the number's new Meta access token")

    def handle(
        self, *, org, phone_number_id, display_phone_number, waba_id, access_token_stdin, replace_token, **options
    ):
        token = sys.stdin.readline().strip() if access_token_stdin else os.environ.get("META_ACCESS_TOKEN", "")
        if not token:
            raise CommandError("No access token: set META_ACCESS_TOKEN or pipe it in with --access-token-stdin.")
        owner = org_by_slug(org)
        try:
            confirmation = phone_number_confirm(phone_number_id=phone_number_id, access_token=token, waba_id=waba_id)
            if replace_token:
                number = phone_number_replace_token(org=owner, confirmation=confirmation)
                audit_record(None, AuditAction.TOKEN_CHANGED, org=owner, target=number.phone_number_id,
                             detail="replaced from the command line")  # fmt: skip
                self.stdout.write(f"Replaced the Meta access token of {number.display_phone_number} ({owner.slug}).")
                return
            number = phone_number_connect(
                org=owner, confirmation=confirmation, display_phone_number=display_phone_number
            )
        except ApiError as error:
            raise CommandError(error.message) from None
        audit_record(None, AuditAction.TOKEN_CHANGED, org=owner, target=number.phone_number_id, detail="connected")
        name = f", {confirmation.verified_name} on WhatsApp" if confirmation.verified_name else ""
        self.stdout.write(f"Connected {number.display_phone_number} ({number.phone_number_id}{name}) to {owner.slug}.")
