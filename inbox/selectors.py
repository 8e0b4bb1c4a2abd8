"""Reads shared by the API, the admin and the services."""

from inbox.models import Membership, PhoneNumber
from kirim.errors import NotFound


def phone_number_of(org, phone_number_id):
    """The org's number; another org's answers exactly like one that does not exist."""
    number = PhoneNumber.objects.filter(org=org, phone_number_id=phone_number_id).first()
    if number is None:
        raise NotFound("No phone number with this phone_number_id.", param="phone_number_id")
    return number


def org_roles_of(user):
    """{org id: role} of every org `user` belongs to; empty for a user with no membership."""
    return dict(Membership.objects.filter(user_id=user.pk).values_list("org_id", "role"))


def waba_number_of(org, waba_id):
    """A number of the org's WhatsApp Business Account `waba_id` (its token reads the account's
    templates); another org's account answers exactly like one that does not exist."""
    number = PhoneNumber.objects.filter(org=org, waba_id=waba_id).order_by("pk").first()
    if number is None or not waba_id:
        raise NotFound("No WhatsApp Business Account with this id.", param="waba_id")
    return number
