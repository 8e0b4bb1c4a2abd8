"""Request ids: every request gets a `req_` id, every response carries it in X-Request-Id."""

from kirim.ids import new_public_id


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = new_public_id("req")
        response = self.get_response(request)
        response["X-Request-Id"] = request.request_id
        return response
