"""gunicorn's worker for Kirim (gunicorn.conf.py): gunicorn's threaded worker, except for what gunicorn
answers itself, a request it cannot read (not HTTP, a request line or headers past gunicorn's
limits) or an application that raised before answering. gunicorn answers those with an HTML page
and logs the request line or URI it read, `?access_token=` and all; this worker answers them in
Kirim's JSON envelope (no path can be read from such a request, so not Meta's shape) and logs what
went wrong, never what the client sent. Kirim's own limits, below gunicorn's, answer the requests
gunicorn can read (core.middleware.RequestGateMiddleware)."""

import json
import socket
from http import HTTPStatus

from gunicorn import util
from gunicorn.http.errors import LimitRequestHeaders, LimitRequestLine, ParseException
from gunicorn.workers.gthread import ThreadWorker


class Worker(ThreadWorker):  # type: ignore[misc]  # gunicorn ships no types
    def handle_error(
        self, req: object, client: socket.socket, addr: tuple[str, int] | None, exc: BaseException
    ) -> None:
        # Imported here: gunicorn loads its worker class before the application sets Django up.
        from core.envelopes import error_body
        from core.errors import ApiError, HeadersTooLarge, InternalError, InvalidRequest, UriTooLong
        from core.ids import new_public_id

        if isinstance(exc, LimitRequestLine):
            error: ApiError = UriTooLong()
        elif isinstance(exc, LimitRequestHeaders):
            error = HeadersTooLarge()
        elif isinstance(exc, ParseException):
            error = InvalidRequest("The request is not HTTP that Kirim can read.", code="malformed_request")
        else:
            error = InternalError()
        request_id = new_public_id("req")
        if error.status == 500:
            self.log.exception("request %s failed before the application answered it", request_id)
        else:  # the exception's text quotes the request: only its kind is logged
            self.log.warning("request %s from %s refused: %s", request_id, addr[0] if addr else "", type(exc).__name__)
        body = json.dumps(error_body(error, request_id)).encode()
        head = (
            f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nX-Request-Id: {request_id}\r\n\r\n"
        )
        try:
            util.write_nonblock(client, head.encode() + body)
        except OSError:
            self.log.debug("request %s: the client left before its answer", request_id)
