"""What the management commands share."""

from django.core.management.base import CommandError

from inbox.models import Org


def org_by_slug(slug):
    """The org a command's --org names, or the error that says how to make it."""
    org = Org.objects.filter(slug=slug).first()
    if org is None:
        raise CommandError(f"No org with slug {slug!r}: create it with create_org.")
    return org
