"""Meta's Graph API: the only package that talks to Meta. `client.py` makes the HTTP calls (the
session, retries, Meta's errors as UpstreamError); the other modules are the endpoints, by concern.
Everything else calls the functions named here."""

from meta.graph.client import Json, PhoneNumber
from meta.graph.media import media_download, media_info, media_upload
from meta.graph.messages import Accepted, mark_read, send_message
from meta.graph.numbers import block_users, blocked_users, phone_number_fields, waba_lists_phone_number
from meta.graph.templates import TemplatePage, message_templates

__all__ = [
    "Accepted",
    "Json",
    "PhoneNumber",
    "TemplatePage",
    "block_users",
    "blocked_users",
    "mark_read",
    "media_download",
    "media_info",
    "media_upload",
    "message_templates",
    "phone_number_fields",
    "send_message",
    "waba_lists_phone_number",
]
