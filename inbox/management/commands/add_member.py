import sys

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from inbox.management.orgs import org_by_slug
from inbox.models import AuditAction, Membership, Role
from orgs.audit import audit_record
from orgs.members import member_add


class Command(BaseCommand):
    help = (
        "Give a staff user an org and a role (agent: the inbox; manager: also numbers and API keys). "
        "Creates the user when missing; run again to change the role. A password is read from standard "
        "input with --password-stdin, never from arguments, which other users can see in the process list."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="org slug")
        parser.add_argument("--username", required=True)
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--email", default="")
        parser.add_argument("--password-stdin", action="store_true", help="set the password read from stdin")

    def handle(self, *, org, username, role, email, password_stdin, **options):
        owner = org_by_slug(org)
        password = sys.stdin.readline().rstrip("\n") if password_stdin else None
        if password is not None:
            try:
                validate_password(password)
            except ValidationError as error:
                raise CommandError("The password is refused: " + " ".join(error.messages)) from None
        before = Membership.objects.filter(user__username=username, org=owner).values_list("role", flat=True).first()
        user, created = member_add(org=owner, username=username, role=role, email=email, password=password)
        audit_record(None, AuditAction.MEMBER_ADDED, org=owner, target=user.get_username(), detail=role)
        if created:
            note = "" if password_stdin else " It has no password yet: run again with --password-stdin."
            self.stdout.write(f"Created staff user {user.username}, {role} of {owner.slug}.{note}")
        elif before == role:
            self.stdout.write(f"{user.username} is {role} of {owner.slug} already.")
        else:
            was = f" (was {before})" if before else ""
            self.stdout.write(f"{user.username} is now {role} of {owner.slug}{was}.")
