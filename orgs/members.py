"""Who works in which org: the one writer of memberships, for `manage.py add_member` and the admin."""

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.db import transaction

from orgs.models import ROLE_GROUPS, Membership, Org


@transaction.atomic
def member_add(
    *, org: Org, username: str, role: str, email: str = "", password: str | None = None
) -> tuple[User, bool]:
    """Make `username` a member of `org` with `role`, creating the staff user when missing; a second
    call changes the role. Returns (user, created)."""
    user, created = get_user_model().objects.get_or_create(username=username, defaults={"email": email})
    if password is not None:
        user.set_password(password)
    elif created:
        user.set_unusable_password()
    user.is_staff = True  # the admin lets only staff in; what they see is the membership's business
    if email:
        user.email = email
    user.save()
    membership_set(user=user, org=org, role=role)
    return user, created


@transaction.atomic
def membership_set(*, user: User, org: Org, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(user=user, org=org, defaults={"role": role})
    role_groups_sync(user)
    return membership


@transaction.atomic
def memberships_remove(memberships: Iterable[Membership]) -> None:
    users = {m.user for m in memberships}
    Membership.objects.filter(pk__in=[m.pk for m in memberships]).delete()
    for user in users:
        role_groups_sync(user)


def role_groups_sync(user: User) -> None:
    """Put the user in the group of each role they hold in any org, and in no other role's group."""
    held = set(Membership.objects.filter(user=user).values_list("role", flat=True))
    groups = {g.name: g for g in Group.objects.filter(name__in=ROLE_GROUPS.values())}
    user.groups.remove(*(groups[name] for role, name in ROLE_GROUPS.items() if role not in held and name in groups))
    user.groups.add(*(groups[name] for role, name in ROLE_GROUPS.items() if role in held and name in groups))
