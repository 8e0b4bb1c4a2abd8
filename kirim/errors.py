"""The error envelope: one exception class with a stable `code`, and one handler that renders every
error under /v1/ (DRF's, Django's and our own) as `{"error": {...}}` with the request id."""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions as drf

logger = logging.getLogger("kirim.errors")


class ApiError(Exception):
    status = 400
    type = "invalid_request_error"
    code = "invalid_field_value"
    message = "The request is invalid."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        param: str | None = None,
        upstream: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.param = param
        self.upstream = upstream
        self.headers = headers or {}
        super().__init__(self.message)


class InvalidRequest(ApiError):
    pass


class MissingField(ApiError):
    code = "missing_required_field"

    def __init__(self, param: str, message: str | None = None) -> None:
        super().__init__(message or f"The field `{param}` is required.", param=param)


class InvalidField(ApiError):
    def __init__(self, param: str, message: str | None = None) -> None:
        super().__init__(message or f"The field `{param}` has an invalid value.", param=param)


class InvalidApiKey(ApiError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"
    message = "Provide a valid API key as `Authorization: Bearer kirim_live_...`."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="kirim"'})


class ExpiredApiKey(InvalidApiKey):
    code = "expired_api_key"
    message = "This API key has expired. Create a new one."


class Forbidden(ApiError):
    status = 403
    type = "permission_error"
    code = "permission_denied"
    message = "This API key may not do that."


class NotFound(ApiError):
    status = 404
    type = "not_found"
    code = "resource_not_found"
    message = "No such resource."


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"


class RequestTooLarge(ApiError):
    status = 413
    code = "request_too_large"


class UriTooLong(ApiError):
    status = 414
    code = "uri_too_long"
    message = "The URL is too long."


class HeadersTooLarge(ApiError):
    status = 431
    code = "request_headers_too_large"
    message = "The request's headers are too many or too large."


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"
    message = "Send the body as application/json."


class Conflict(ApiError):
    status = 409
    type = "conflict"


class IdempotencyKeyReuse(ApiError):
    status = 422
    code = "idempotency_key_reuse"
    message = "This Idempotency-Key was used with a different request body."


class IdempotencyInProgress(Conflict):
    code = "idempotency_in_progress"
    message = "A request with this Idempotency-Key is still being processed. Retry shortly."


class RateLimited(ApiError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    message = "Too many requests. Retry after the number of seconds in Retry-After."


class InternalError(ApiError):
    status = 500
    type = "api_error"
    code = "internal_error"
    message = "Something went wrong on our side. Quote the request id when you contact support."


class UpstreamError(ApiError):
    """Meta answered with an error, timed out or could not be reached."""

    status = 502
    type = "api_error"
    code = "whatsapp_upstream_error"
    message = "WhatsApp's Cloud API did not accept the request."
    # True: Meta answered (it refused); None: it may have received the call, no answer came; False: it
    # certainly did not (the connection was never made), so sending again cannot duplicate anything.
    meta_received: bool | None = True
    meta_error: dict[str, Any] | None = None  # Meta's error object whole, for the door that answers in Meta's shape


def error_body(error: ApiError, request_id: str | None) -> dict[str, Any]:
    """The envelope's body for `error`."""
    body: dict[str, Any] = {
        "type": error.type,
        "code": error.code,
        "message": error.message,
        "param": error.param,
        "request_id": request_id,
    }
    if error.upstream is not None:
        body["upstream"] = error.upstream
    return {"error": body}


def error_response(request: HttpRequest, error: ApiError) -> JsonResponse:
    response = JsonResponse(error_body(error, getattr(request, "request_id", None)), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def _field_error(detail: Any, path: str = "") -> tuple[str | None, str | None, str]:
    """The first field error of a DRF ValidationError as (dotted param, code, message)."""
    if isinstance(detail, dict):
        name, inner = next(iter(detail.items()))
        if name != "non_field_errors":  # DRF's name for "the object itself is wrong"
            path = f"{path}.{name}" if path else name
        return _field_error(inner, path)
    if isinstance(detail, list):
        return _field_error(detail[0], path)
    return path or None, getattr(detail, "code", None), str(detail)


def as_api_error(exc: BaseException) -> ApiError | None:
    """Map DRF's and Django's exceptions onto the contract's table; None for a bug."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, drf.ValidationError):
        param, code, message = _field_error(exc.detail)
        if param is None:
            return InvalidRequest(message)
        if code == "required":
            return MissingField(param)
        return InvalidField(param, f"`{param}`: {message}")
    if isinstance(exc, drf.ParseError):
        return InvalidRequest("The body is not valid JSON.", code="invalid_json")
    if isinstance(exc, drf.UnsupportedMediaType):
        return UnsupportedMediaType()
    if isinstance(exc, drf.MethodNotAllowed):
        return MethodNotAllowed(str(exc.detail))
    if isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
        return InvalidApiKey()
    if isinstance(exc, (drf.NotFound, Http404)):
        return NotFound()
    if isinstance(exc, (drf.PermissionDenied, PermissionDenied)):
        return Forbidden()
    if isinstance(exc, drf.Throttled):
        return RateLimited(headers={"Retry-After": str(int(exc.wait or 1))})  # type: ignore[attr-defined]  # DRF sets it; its stubs miss it
    return None


def api_error_of(exc: BaseException, request: HttpRequest) -> ApiError:
    """The ApiError to answer for any exception raised in a view; a bug is logged and hidden."""
    error = as_api_error(exc)
    if error is None:
        logger.exception("unhandled error request_id=%s", getattr(request, "request_id", None))
        error = InternalError()
    return error


def exception_handler(exc: Exception, context: dict[str, Any]) -> JsonResponse:
    """DRF's EXCEPTION_HANDLER: every exception raised in a /v1/ view ends here."""
    return error_response(context["request"], api_error_of(exc, context["request"]))
