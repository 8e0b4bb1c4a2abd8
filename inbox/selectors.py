"""Reads shared by the API, the admin and the services."""

from inbox.models import Membership, PhoneNumber, Role
from kirim.errors import NotFound


def phone_number_of(org, phone_number_id):
    """The org's number; another org's answers exactly like one that does not exist."""
    number = PhoneNumber.objects.filter(org=org, phone_number_id=phone_number_id).first()
    if number is None:
        raise NotFound("No phone number with this phone_number_id.", param="phone_number_id")
    return number


def org_ids_of(user, roles=tuple(Role)):
    """The ids of the orgs where `user` holds one of `roles`, as a subquery: filtering on it adds no
    query to a page, and a user with no membership gets no org."""
    return Membership.objects.filter(user_id=user.pk, role__in=roles).values("org_id")


def waba_number_of(org, waba_id):
    """A number of the org's WhatsApp Business Account `waba_id` (its token reads the account's
    templates); another org's account answers exactly like one that does not exist."""
    number = PhoneNumber.objects.filter(org=org, waba_id=waba_id).order_by("pk").first()
    if number is None or not waba_id:
        raise NotFound("No WhatsApp Business Account with this id.", param="waba_id")
    return number
