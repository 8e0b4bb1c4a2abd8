"""Connecting a business number to an org: only once Meta confirms that the access token given can
act for the number (and that the number is one of the WABA given), and never a number connected
already. The one writer of new numbers, for `manage.py add_phone_number` and the admin.

Meta is asked before Kirim looks for the number among its own: whoever cannot show a token for a
number learns nothing from Kirim about it, not even whether it is connected, let alone to which org."""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from django.db import IntegrityError, transaction

from core.errors import ApiError, Conflict, InvalidField, NotFound, UpstreamError
from inbox.models import Org, PhoneNumber
from meta import graph as meta_graph

PHONE_NUMBER_ID = re.compile(r"[0-9]{6,20}")

Answer = TypeVar("Answer")


class NumberNotConfirmed(ApiError):
    code = "phone_number_not_confirmed"


class NumberConnected(Conflict):
    code = "phone_number_connected"
    message = "This number is connected to Kirim already."


@dataclass(frozen=True)
class Confirmation:
    """What Meta confirmed: this token can act for this number, of this WABA when one was given."""

    phone_number_id: str
    waba_id: str
    access_token: str = field(repr=False)
    display_phone_number: str
    verified_name: str

    def covers(self, *, phone_number_id: str, waba_id: str, access_token: str) -> bool:
        return (self.phone_number_id, self.waba_id, self.access_token) == (phone_number_id, waba_id, access_token)


def phone_number_confirm(*, phone_number_id: str, access_token: str, waba_id: str = "") -> Confirmation:
    """Ask Meta, with `access_token`, for the number and, given a WABA, for the WABA's numbers: a
    Confirmation, or NumberNotConfirmed when Meta refuses or does not list it (UpstreamError when Meta
    cannot be asked). Calls Meta: no transaction may be open."""
    if not PHONE_NUMBER_ID.fullmatch(phone_number_id):
        raise InvalidField("phone_number_id", "The phone number id is Meta's numeric id: 6 to 20 digits.")
    if not access_token:
        raise InvalidField("access_token", "Give the Meta access token of the number.")
    candidate = PhoneNumber(phone_number_id=phone_number_id, waba_id=waba_id, access_token=access_token)
    refused = f"Meta did not confirm that this access token can act for phone number id {phone_number_id}"
    described = _asked(meta_graph.phone_number_fields, candidate, refused)
    display_phone_number = described.get("display_phone_number")
    if described.get("id") != phone_number_id or not isinstance(display_phone_number, str) or not display_phone_number:
        raise NumberNotConfirmed(f"{refused}: Meta's answer does not describe that number.", param="phone_number_id")
    if waba_id and not _asked(meta_graph.waba_lists_phone_number, candidate, refused):
        raise NumberNotConfirmed(
            f"Meta does not list phone number id {phone_number_id} among the numbers of WABA {waba_id}.",
            param="waba_id",
        )
    verified_name = described.get("verified_name")
    return Confirmation(
        phone_number_id=phone_number_id,
        waba_id=waba_id,
        access_token=access_token,
        display_phone_number=display_phone_number[:32],
        verified_name=verified_name if isinstance(verified_name, str) else "",
    )


def _asked(call: Callable[[PhoneNumber], Answer], candidate: PhoneNumber, refused: str) -> Answer:
    """`call(candidate)`; Meta's refusal (an answer in 4xx) becomes NumberNotConfirmed with Meta's words."""
    try:
        return call(candidate)
    except UpstreamError as error:
        upstream = error.upstream or {}
        if 400 <= (upstream.get("http_status") or 0) < 500:
            raise NumberNotConfirmed(f"{refused}: {upstream['message']}", param="phone_number_id") from None
        raise


def phone_number_connect(*, org: Org, confirmation: Confirmation, display_phone_number: str = "") -> PhoneNumber:
    """Connect the number Meta confirmed to `org` (shown as `display_phone_number`, else as Meta
    displays it); NumberConnected when it is connected already, to this org or another."""
    try:
        with transaction.atomic():
            return PhoneNumber.objects.create(
                org=org,
                phone_number_id=confirmation.phone_number_id,
                waba_id=confirmation.waba_id,
                access_token=confirmation.access_token,
                display_phone_number=display_phone_number or confirmation.display_phone_number,
            )
    except IntegrityError:  # phone_number_id is unique: the one constraint a new row can break
        raise NumberConnected(param="phone_number_id") from None


def phone_number_replace_token(*, org: Org, confirmation: Confirmation) -> PhoneNumber:
    """Give the number Meta confirmed, connected to `org`, the confirmed token in place of its own: the
    next call to Meta uses it. NotFound when it is not a number of `org` (another org's included)."""
    with transaction.atomic():
        found = (
            PhoneNumber.objects.select_for_update()
            .filter(org=org, phone_number_id=confirmation.phone_number_id)
            .first()
        )
        if found is None:
            raise NotFound(f"No phone number {confirmation.phone_number_id} in this org.", param="phone_number_id")
        found.access_token = confirmation.access_token
        found.save(update_fields=["access_token"])
    return found
