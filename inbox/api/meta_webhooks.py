"""Meta's webhooks in: GET verification and signed POSTs at /webhooks/whatsapp.

Flow: verify the signature over the raw body (constant time) -> keep the raw body -> apply it ->
200. A bad signature is a security event: logged and rejected. A well-signed payload we cannot use is
still acknowledged, or Meta would retry it forever; a database outage is a 5xx, so Meta retries.

Meta's deliveries are Kirim's busiest requests: `MetaDeliveries` answers them in front of Django's
handler; the view answers everything else that comes to the URL."""

import io
import logging
import time
from collections.abc import Iterable, Iterator
from http import HTTPStatus
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from django.conf import settings
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIRequest
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt

from core import metrics, tracing
from core.envelopes import error_response
from core.errors import MethodNotAllowed
from core.ids import new_public_id
from core.middleware import body_refusal, log_request, logged_as
from core.surfaces import body_limit_for
from core.upstream import calls_made
from inbox.services.ingest import webhook_receive
from meta.signing import meta_signature

logger = logging.getLogger("kirim.webhooks")

WEBHOOK_ROUTE = "webhooks/whatsapp"


def signature_is_valid(raw_body: bytes, header: str) -> bool:
    """Signed with META_APP_SECRET or, while Meta's side switches to it, META_APP_SECRET_PREVIOUS.
    Both are computed and compared whatever the first gives, so the time taken tells nothing."""
    secrets = (settings.META_APP_SECRET, settings.META_APP_SECRET_PREVIOUS or settings.META_APP_SECRET)
    matches = [constant_time_compare(header, meta_signature(secret, raw_body)) for secret in secrets]
    return any(matches)


@csrf_exempt
def whatsapp_webhook(request: HttpRequest) -> HttpResponseBase:
    if request.method not in ("GET", "POST"):
        refused = MethodNotAllowed("Only GET (Meta's verification) and POST (its deliveries) are allowed here.",
                                   headers={"Allow": "GET, POST"})  # fmt: skip
        return error_response(request, refused)
    if request.method == "GET":
        token = request.GET.get("hub.verify_token", "")
        if request.GET.get("hub.mode") == "subscribe" and constant_time_compare(
            token, settings.META_WEBHOOK_VERIFY_TOKEN
        ):
            return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")
        logger.warning("webhook verification refused: wrong mode or verify token")
        return HttpResponse("Forbidden", status=403, content_type="text/plain")

    # META, not request.headers: that builds a dict of every header for the one read.
    if not signature_is_valid(request.body, request.META.get("HTTP_X_HUB_SIGNATURE_256", "")):
        logger.warning(
            "security: webhook rejected, bad or missing X-Hub-Signature-256 from %s", request.META.get("REMOTE_ADDR")
        )
        metrics.meta_webhook("bad_signature")
        return HttpResponse("Invalid signature", status=401, content_type="text/plain")
    webhook_receive(request.body)
    return HttpResponse("OK", content_type="text/plain")


class _Delivery(WSGIRequest):
    """A delivery's request, with the id Kirim's middleware would have given it."""

    request_id: str


# A delivery's answer: (status, headers, content).
Answer = tuple[HTTPStatus, list[tuple[str, str]], bytes]


# A fast path, with its plain path and their equivalence test: docs/development/performance.md.
class MetaDeliveries:
    """A WSGI application in front of Django's that answers Meta's deliveries itself: a POST to the
    webhook, signed, its body declared and within the limit, in UTF-8, over HTTPS where that is required.
    It does for them what the view and Kirim's middleware did (request id, request log, body gate,
    signature, the service, Django's answer to an exception) and what Django's request signals did:
    hand the connection back. Their other receivers have nothing of a delivery's to reset but DEBUG's
    query log, which is bounded. SecurityMiddleware's headers are for browsers, and left out. Without
    resolving the URL, the middleware chain, a response object and the two signals, a delivery's Python
    is ~0.3 ms shorter (bench/ingest.py, docs/benchmarks.md). Anything else, a bad signature included,
    goes to `django_application`, which answers it as it answers any request."""

    def __init__(self, django_application: WSGIApplication) -> None:
        self.django_application = django_application
        self.path = f"/{WEBHOOK_ROUTE}"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != self.path:
            return self.django_application(environ, start_response)
        started = time.monotonic()
        request = _Delivery(environ)
        if not self._takes(request):
            return self.django_application(environ, start_response)
        request.request_id = new_public_id("req")
        calls_made.start()
        try:
            with logged_as(request.request_id), tracing.request_span(request) as finish:
                answer = self._answer(request)
                if answer is not None:
                    finish(log_request(request, answer[0], started, route=WEBHOOK_ROUTE), answer[0])
            if answer is None:  # a bad signature: the view refuses and logs it, reading the body again
                environ["wsgi.input"] = io.BytesIO(request.body)
                return self.django_application(environ, start_response)
            status, headers, content = answer
            headers += [("Content-Length", str(len(content))), ("X-Request-Id", request.request_id)]
            start_response(f"{status.value} {status.phrase}", headers)
        except BaseException:
            _hand_back()
            raise
        return _ThenHandBack(content)

    def _answer(self, request: _Delivery) -> Answer | None:
        """(status, headers, content) for a delivery, Django's answer to an exception included; None
        when its signature is wrong."""
        try:
            if not signature_is_valid(request.body, request.META.get("HTTP_X_HUB_SIGNATURE_256", "")):
                return None
            webhook_receive(request.body)
            return HTTPStatus.OK, [("Content-Type", "text/plain")], b"OK"
        except Exception as error:  # noqa: BLE001 (Django's answer logs it, in kirim.urls.handler500's envelope)
            response = response_for_exception(request, error)
            return HTTPStatus(response.status_code), list(response.items()), response.content

    def _takes(self, request: WSGIRequest) -> bool:
        """Whether the request is a plain delivery, as far as can be told before reading its body."""
        if settings.SECURE_SSL_REDIRECT and not request.is_secure():
            return False  # SecurityMiddleware redirects it
        if not request.META.get("CONTENT_LENGTH"):
            return False  # chunked, or no body: the body gate decides
        limit = body_limit_for(request.path)
        if limit is None:
            return False  # served under a prefix (SCRIPT_NAME): outside the gate, as the middleware has it
        return body_refusal(request, limit) is None


def _hand_back() -> None:
    connection.close_if_unusable_or_obsolete()  # close_old_connections, for the one database


class _ThenHandBack:
    """A delivery's answer. The server calls close() once it has sent it (PEP 3333); the connection
    goes back to the pool only then, as Django's request_finished does it, and Meta has its answer
    that much sooner."""

    def __init__(self, content: bytes) -> None:
        self.content = content

    def __iter__(self) -> Iterator[bytes]:
        yield self.content

    def close(self) -> None:
        _hand_back()
