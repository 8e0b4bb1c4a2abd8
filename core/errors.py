"""Kirim's errors: one exception class per kind, with a stable `code`, the contract's status for it,
and the field it is about. Services raise them; core.envelopes renders them for the doors."""

import logging
from typing import Any

logger = logging.getLogger("core.errors")


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


class InsufficientScope(Forbidden):
    code = "insufficient_scope"

    def __init__(self, scope: str) -> None:
        super().__init__(f"This API key lacks the `{scope}` scope. Create a key with it.")


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
    # certainly did not take it (the connection was never made, or Meta refused it for throughput without
    # taking it), so sending again cannot duplicate anything.
    meta_received: bool | None
    meta_error: dict[str, Any] | None  # Meta's error object whole, for the door that answers in Meta's shape
    meta_answer: dict[str, Any] | None  # Meta's whole answer: one of mixed outcomes (block_users) says more

    def __init__(
        self,
        message: str | None = None,
        *,
        meta_received: bool | None = True,
        meta_error: dict[str, Any] | None = None,
        meta_answer: dict[str, Any] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message, **details)
        self.meta_received, self.meta_error, self.meta_answer = meta_received, meta_error, meta_answer
