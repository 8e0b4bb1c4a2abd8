"""Media: what an org uploads through Kirim is recorded, and Meta is asked about a media id only for
an org that received or uploaded it (inbox.selectors.media_number_of), with the token of the number
that did."""

from inbox.models import Org, PhoneNumber, UploadedMedia
from inbox.selectors import media_number_of
from meta import graph as meta_graph
from meta.graph import Json


def media_upload(*, phone_number: PhoneNumber, content: bytes, filename: str, mime_type: str) -> str:
    """Upload a file to Meta with the number's token, for later sends; Meta's media id, recorded for the
    number's org so that it can be read back."""
    media_id = meta_graph.media_upload(phone_number, content=content, filename=filename, mime_type=mime_type)
    UploadedMedia.objects.bulk_create(
        [UploadedMedia(org_id=phone_number.org_id, phone_number=phone_number, media_id=media_id)],
        ignore_conflicts=True,  # recorded already: nothing to add
    )
    return media_id


def media_describe(*, org: Org, media_id: str) -> tuple[PhoneNumber, Json]:
    """Meta's description of media `media_id` of the org, and the number whose token reads it; NotFound,
    without asking Meta, for media the org never received or uploaded. Meta's refusal is Meta's own."""
    number = media_number_of(org, media_id)
    return number, meta_graph.media_info(number, media_id)
