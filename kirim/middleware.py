"""Request ids on every response, and the error envelope for anything that escapes a /v1/ view."""

import logging

from kirim.errors import InternalError, as_api_error, error_response
from kirim.ids import new_public_id

logger = logging.getLogger("kirim.errors")

API_PREFIX = "/v1/"


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = new_public_id("req")
        response = self.get_response(request)
        response["X-Request-Id"] = request.request_id
        return response

    def process_exception(self, request, exception):
        """Errors outside DRF's handler (URL resolving, Django's own checks) still answer JSON."""
        if not request.path.startswith(API_PREFIX):
            return None
        error = as_api_error(exception)
        if error is None:
            logger.exception("unhandled error request_id=%s", request.request_id)
            error = InternalError()
        return error_response(request, error)
