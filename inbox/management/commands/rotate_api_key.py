from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApiError
from core.ids import is_public_id
from inbox.models import ApiKey, AuditAction
from orgs.audit import audit_record
from orgs.keys import api_key_rotate


class Command(BaseCommand):
    help = (
        "Rotate an API key: a new key with its name, scopes and expiry, printed once, alone on the last line. "
        "The old key keeps working for the grace period (API_KEY_ROTATION_GRACE_HOURS unless given), then expires."
    )

    def add_arguments(self, parser):
        parser.add_argument("--key", required=True, help="the key's id, key_...")
        parser.add_argument("--grace-period-hours", type=int)

    def handle(self, *, key, grace_period_hours, **options):
        old = ApiKey.objects.select_related("org").filter(external_id=key).first() if is_public_id(key, "key") else None
        if old is None:
            raise CommandError(f"No API key {key}.")
        grace = None if grace_period_hours is None else timedelta(hours=grace_period_hours)
        try:
            new, secret = api_key_rotate(key=old, grace=grace)
        except ApiError as error:
            raise CommandError(error.message) from None
        audit_record(None, AuditAction.KEY_ROTATED, org=old.org, target=old, detail=new.external_id)
        self.stdout.write(
            f"Rotated {old.external_id} of {old.org.slug}: it works until {old.expires_at:%Y-%m-%d %H:%M} UTC. "
            f"The new key {new.external_id} is shown once:"
        )
        self.stdout.write(secret)
