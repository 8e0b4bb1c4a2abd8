from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from inbox.management.orgs import org_by_slug
from inbox.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key for an org. The key is printed once, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="org slug")
        parser.add_argument("--name", default="")
        parser.add_argument("--expires-in-days", type=int)

    def handle(self, *, org, name, expires_in_days, **options):
        owner = org_by_slug(org)
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be 1 or more.")
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        key, secret = ApiKey.issue(org=owner, name=name, expires_at=expires_at)
        self.stdout.write(f"Created API key {key.external_id} for {owner.slug}. It is shown once:")
        self.stdout.write(secret)
