from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from inbox.management.orgs import org_by_slug
from inbox.models import ALL_SCOPES, ApiKey, AuditAction, Scope
from orgs.audit import audit_record


class Command(BaseCommand):
    help = "Create an API key for an org. The key is printed once, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="org slug")
        parser.add_argument("--name", default="")
        parser.add_argument("--expires-in-days", type=int)
        parser.add_argument(
            "--scope", action="append", choices=Scope.values, dest="scopes",
            help="what the key may do; repeat for several (default: every scope)",
        )  # fmt: skip

    def handle(self, *, org, name, expires_in_days, scopes, **options):
        owner = org_by_slug(org)
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be 1 or more.")
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        scopes = " ".join(s for s in Scope.values if s in scopes) if scopes else ALL_SCOPES
        key, secret = ApiKey.issue(org=owner, name=name, expires_at=expires_at, scopes=scopes)
        audit_record(None, AuditAction.KEY_CREATED, org=owner, target=key, detail=key.scopes)
        self.stdout.write(f"Created API key {key.external_id} for {owner.slug}. It is shown once:")
        self.stdout.write(secret)
