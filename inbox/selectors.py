"""Reads shared by the API and the services."""

from inbox.models import PhoneNumber
from kirim.errors import NotFound


def phone_number_of(org, phone_number_id):
    """The org's number; another org's answers exactly like one that does not exist."""
    number = PhoneNumber.objects.filter(org=org, phone_number_id=phone_number_id).first()
    if number is None:
        raise NotFound("No phone number with this phone_number_id.", param="phone_number_id")
    return number
