"""Errors in Meta's own shape, for the Graph-compatible door at /{version}/
(docs/guides/meta-compatible-api.md): `{"error": {message, type, code: int, error_subcode?, error_data,
fbtrace_id}}`.

When Meta refused, its own error object is passed on as Meta gave it. Kirim's own refusals carry the
code Meta gives for the same case, so clients branch on them as they do against Meta."""

import re
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, JsonResponse

from core.envelopes import api_error_of
from core.errors import ApiError

# v13.0, v23.0, v27.0 ...: every Graph API version, present and future; /{version}/ is Meta's surface.
GRAPH_VERSION = r"v[0-9]{1,3}\.[0-9]{1,2}"
# A path that begins with a Graph id (digits), with or without a version before it: graph.facebook.com
# serves its paths without one too. No Kirim route begins with digits.
GRAPH_ID_PATH = rf"^/(?:{GRAPH_VERSION}/)?[0-9]+"
# A first segment that reads as a version without being one (`/v23/`, `/v23.0.1/`, `/V23.0/`): a client
# of Meta's surface with a wrong version, answered in Meta's shape rather than by Django's HTML page.
# /v1/ is Kirim's own.
VERSION_LIKE = r"(?!v1/)[vV][^/]*"
GRAPH_PATH = re.compile(rf"^/{VERSION_LIKE}/|{GRAPH_ID_PATH}(?:/|$)")


@dataclass(frozen=True)
class MetaCode:
    code: int
    message: str  # Meta's own wording for the code
    http_status: int = 400
    subcode: int | None = None
    type: str = "OAuthException"


INVALID_PARAMETER = MetaCode(100, "(#100) Invalid parameter")
INVALID_MESSAGE_ID = MetaCode(131009, "(#131009) Parameter value is not valid")
NO_SUCH_OBJECT = MetaCode(
    100,
    "Unsupported request. Object does not exist, cannot be loaded due to missing permissions, or does not "
    "support this operation",
    subcode=33,
    type="GraphMethodException",
)
NO_PERMISSION = MetaCode(10, "(#10) Application does not have permission for this action", 403)
TEMPORARILY_UNAVAILABLE = MetaCode(2, "Service temporarily unavailable", http_status=503)

# Kirim's error code (and, where the case needs it, the field) -> what Meta answers for that case.
# The table "Kirim's refusals in Meta's codes" of docs/reference/errors.md is this one (a test holds them
# together).
BY_KIRIM_CODE: dict[str | tuple[str, str | None], MetaCode] = {
    "invalid_json": INVALID_PARAMETER,
    "missing_required_field": INVALID_PARAMETER,
    "invalid_field_value": INVALID_PARAMETER,
    "unsupported_media_type": INVALID_PARAMETER,
    "request_too_large": MetaCode(100, "(#100) Invalid parameter", http_status=413),
    "uri_too_long": MetaCode(100, "(#100) Invalid parameter", http_status=414),
    "request_headers_too_large": MetaCode(100, "(#100) Invalid parameter", http_status=431),
    "method_not_allowed": MetaCode(100, "Unsupported request method", http_status=405, type="GraphMethodException"),
    "resource_not_found": NO_SUCH_OBJECT,
    ("resource_not_found", "message_id"): INVALID_MESSAGE_ID,
    ("invalid_field_value", "message_id"): INVALID_MESSAGE_ID,
    "invalid_api_key": MetaCode(190, "Invalid OAuth access token - Cannot parse access token", http_status=401),
    "expired_api_key": MetaCode(
        190, "Error validating access token: Session has expired", http_status=401, subcode=463
    ),
    "permission_denied": NO_PERMISSION,
    "insufficient_scope": NO_PERMISSION,
    "rate_limit_exceeded": MetaCode(80007, "(#80007) Rate limit hit for this account", http_status=429),
    "idempotency_in_progress": MetaCode(2, "Service temporarily unavailable", http_status=409),
    "idempotency_key_reuse": MetaCode(100, "(#100) Idempotency-Key was used with a different request", 422),
    "internal_error": MetaCode(1, "An unknown error occurred", http_status=500),
    "whatsapp_upstream_error": TEMPORARILY_UNAVAILABLE,  # Meta gave no error object: not reached, not JSON
}


def meta_code_for(error: ApiError) -> MetaCode:
    return BY_KIRIM_CODE.get((error.code, error.param)) or BY_KIRIM_CODE.get(error.code, INVALID_PARAMETER)


def meta_error_body(request: HttpRequest, error: ApiError) -> tuple[dict[str, Any], int]:
    """The body Meta would answer for `error` (an ApiError), and its HTTP status."""
    meta_error = getattr(error, "meta_error", None)
    upstream_status = (error.upstream or {}).get("http_status")
    if meta_error and isinstance(meta_error.get("code"), int):
        return {"error": meta_error}, upstream_status or 400
    meta = meta_code_for(error)
    body: dict[str, Any] = {"message": meta.message, "type": meta.type, "code": meta.code}
    if meta.subcode is not None:
        body["error_subcode"] = meta.subcode
    if meta.code in (1, 2):
        body["is_transient"] = True
    body["error_data"] = {"messaging_product": "whatsapp", "details": error.message}
    body["fbtrace_id"] = getattr(request, "request_id", None)  # Kirim's trace: quote it to support
    return {"error": body}, meta.http_status


def meta_error_response(request: HttpRequest, error: ApiError) -> JsonResponse:
    body, status = meta_error_body(request, error)
    response = JsonResponse(body, status=status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> JsonResponse:
    """DRF's exception handler for the views of the Graph-compatible door."""
    return meta_error_response(context["request"], api_error_of(exc, context["request"]))
