"""Meta's webhooks in: GET verification and signed POSTs at /webhooks/whatsapp.

Flow: verify the signature over the raw body (constant time) -> keep the raw body -> apply it ->
200. A bad signature is a security event: logged and rejected. A well-signed payload we cannot use is
still acknowledged, or Meta would retry it forever; a database outage is a 5xx, so Meta retries."""

import logging

from django.conf import settings
from django.http import HttpResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from inbox.services import webhook_receive
from kirim.webhook_signing import meta_signature

logger = logging.getLogger("kirim.webhooks")


def signature_is_valid(raw_body, header):
    return constant_time_compare(header, meta_signature(settings.META_APP_SECRET, raw_body))


@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp_webhook(request):
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
        return HttpResponse("Invalid signature", status=401, content_type="text/plain")
    webhook_receive(request.body)
    return HttpResponse("OK", content_type="text/plain")
