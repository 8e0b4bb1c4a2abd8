"""Reads shared by the API, the admin and the services."""

from django.db.models import Q

from core.errors import NotFound
from inbox.models import MEDIA_ID_IN_PAYLOAD, MEDIA_MESSAGES, Message, Org, PhoneNumber, UploadedMedia


def phone_number_of(org: Org, phone_number_id: str) -> PhoneNumber:
    """The org's number; another org's answers exactly like one that does not exist."""
    number = PhoneNumber.objects.filter(org=org, phone_number_id=phone_number_id).first()
    if number is None:
        raise NotFound("No phone number with this phone_number_id.", param="phone_number_id")
    return number


def waba_number_of(org: Org, waba_id: str) -> PhoneNumber:
    """A number of the org's WhatsApp Business Account `waba_id` (its token reads the account's
    templates); another org's account answers exactly like one that does not exist."""
    number = PhoneNumber.objects.filter(org=org, waba_id=waba_id).order_by("pk").first()
    if number is None or not waba_id:
        raise NotFound("No WhatsApp Business Account with this id.", param="waba_id")
    return number


def media_number_of(org: Org, media_id: str) -> PhoneNumber:
    """The org's number that received media `media_id` in a message, or uploaded it through Kirim: its
    token reads the media from Meta. Media the org never had, another org's included, answers exactly
    like missing media, and Meta is never asked about it. One query, on the index message_media_id and
    the unique (org, media_id) of uploads."""
    received = Message.objects.filter(MEDIA_MESSAGES, org=org).alias(media_id=MEDIA_ID_IN_PAYLOAD)
    uploaded = UploadedMedia.objects.filter(org=org, media_id=media_id)
    number = (
        PhoneNumber.objects.filter(org=org)
        .filter(
            Q(pk__in=received.filter(media_id=media_id).values("phone_number"))
            | Q(pk__in=uploaded.values("phone_number"))
        )
        .order_by("pk")
        .first()
    )
    if number is None:
        raise NotFound("No media with this id.", param="media_id")
    return number
