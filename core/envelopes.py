"""The error envelope: one handler that renders every error under /v1/ (DRF's, Django's and our own)
as `{"error": {...}}` with the request id."""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions as drf

from core.errors import (
    ApiError,
    Forbidden,
    InternalError,
    InvalidApiKey,
    InvalidField,
    InvalidRequest,
    MethodNotAllowed,
    MissingField,
    NotFound,
    RateLimited,
    UnsupportedMediaType,
    logger,
)


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
