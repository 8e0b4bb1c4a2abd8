from django.core.management.base import BaseCommand, CommandError

from inbox.management.orgs import org_by_slug
from inbox.models import AuditAction, PhoneNumber
from inbox.services.erasure import contact_erase
from orgs.audit import audit_record


class Command(BaseCommand):
    help = (
        "Erase a contact on one of the org's numbers, as DELETE /v1/{phone_number_id}/contacts/{contact} does: "
        "the content of their messages, the raw webhook payloads and the events out that name them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="org slug")
        parser.add_argument("--phone-number-id", required=True)
        parser.add_argument("--contact", required=True, help="the contact's wa_id or business-scoped user id")

    def handle(self, *, org, phone_number_id, contact, **options):
        owner = org_by_slug(org)
        number = PhoneNumber.objects.filter(org=owner, phone_number_id=phone_number_id).first()
        if number is None:
            raise CommandError(f"No phone number {phone_number_id} in {owner.slug}.")
        erased = contact_erase(phone_number=number, contact=contact)
        audit_record(None, AuditAction.CONTACT_ERASED, org=owner, target=contact,
                     detail=f"on {phone_number_id}: {erased.messages} messages")  # fmt: skip
        self.stdout.write(
            f"Erased {contact} on {phone_number_id}: the content of {erased.messages} message(s), "
            f"{erased.webhook_payloads} webhook payload(s) and {erased.events} event(s) out."
        )
