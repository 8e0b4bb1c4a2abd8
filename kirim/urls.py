from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularRedocView
from rest_framework.routers import SimpleRouter

from core import health as health_checks
from core.api import SchemaView, bad_request, health, server_error, unknown_endpoint
from core.metrics import metrics_view
from inbox.admin import second_factor
from inbox.api.business import BlockUsersView, GraphBlockUsersView, PriceReportView
from inbox.api.conversations import ConversationListView, ConversationNotesView, ConversationView
from inbox.api.graph import (
    GraphMediaContentView,
    GraphMediaUploadView,
    GraphMediaView,
    GraphTemplatesView,
    unknown_graph_path,
)
from inbox.api.meta_webhooks import WEBHOOK_ROUTE, whatsapp_webhook
from inbox.api.v1 import AccountsView, ContactView, MeView, RotateKeyView
from meta.errors import GRAPH_VERSION, VERSION_LIKE
from outbox.api.views import WebhookDeliveryViewSet, WebhookSubscriptionViewSet
from receipts.api import ReadingGraphMessagesView, ReadingMessageViewSet

router = SimpleRouter(trailing_slash=False)
router.register(r"(?P<phone_number_id>[0-9]{6,20})/messages", ReadingMessageViewSet, basename="message")
router.register("webhook_subscriptions", WebhookSubscriptionViewSet, basename="webhook-subscription")
router.register("webhook_deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")

# Meta's own API (inbox/api/graph.py): any Graph version, /v13.0/ to /v27.0/ and on.
GRAPH = rf"^(?P<version>{GRAPH_VERSION})/"


def graph_routes(prefix):
    return [
        re_path(prefix + r"(?P<phone_number_id>[0-9]{6,20})/messages$", ReadingGraphMessagesView.as_view()),
        re_path(prefix + r"(?P<phone_number_id>[0-9]{6,20})/media$", GraphMediaUploadView.as_view()),
        re_path(prefix + r"(?P<phone_number_id>[0-9]{6,20})/block_users$", GraphBlockUsersView.as_view()),
        re_path(prefix + r"(?P<waba_id>[0-9]{6,32})/message_templates$", GraphTemplatesView.as_view()),
        re_path(prefix + r"(?P<media_id>[0-9]{6,32})$", GraphMediaView.as_view()),
        re_path(prefix + r"(?P<media_id>[0-9]{6,32})/content$", GraphMediaContentView.as_view()),
    ]


graph_urls = [
    *graph_routes(GRAPH),
    re_path(GRAPH, unknown_graph_path),  # anything else under a version: Meta's error, never HTML
]
# graph.facebook.com serves the same paths without a version (at the app's default one), and some
# clients drop it: the same views. Those paths begin with a Graph id, digits, as no Kirim route does.
unversioned_graph_urls = [*graph_routes("^"), re_path(r"^[0-9]+(?:/|$)", unknown_graph_path)]

v1_api = [
    path("v1/health", health),
    path("v1/health/live", health_checks.live),
    path("v1/health/ready", health_checks.ready),
    path("v1/accounts", AccountsView.as_view()),
    path("v1/me", MeView.as_view()),
    path("v1/me/rotate_key", RotateKeyView.as_view()),
    re_path(r"^v1/(?P<phone_number_id>[0-9]{6,20})/contacts/(?P<contact>[^/]{1,128})$", ContactView.as_view()),
    path("v1/conversations", ConversationListView.as_view()),
    path("v1/conversations/<str:conversation_id>", ConversationView.as_view()),
    path("v1/conversations/<str:conversation_id>/notes", ConversationNotesView.as_view()),
    path("v1/pricing", PriceReportView.as_view()),
    re_path(r"^v1/(?P<phone_number_id>[0-9]{6,20})/block_users$", BlockUsersView.as_view()),
    path("v1/", include(router.urls)),
]

# Each surface has its own OpenAPI document: Kirim's envelope at /v1/, Meta's shapes at /{version}/.
GRAPH_SCHEMA_SETTINGS = {
    "TITLE": "Kirim: Meta's own API",
    "DESCRIPTION": "Meta's Cloud API shapes at /{version}/...: existing WhatsApp clients work by changing "
    "their base URL and token. Kirim's API key as `Authorization: Bearer` (or `?access_token=`). Every path "
    "also answers without its version segment, as graph.facebook.com does.",
    "SCHEMA_PATH_PREFIX": f"/{GRAPH_VERSION}",
}


# Redoc's own script, inline init and styles, search worker and icons; nothing from another host (its
# footer's logo comes from a CDN: the browser refuses it).
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)


def docs_page(schema_url_name, title):
    """Redoc on a page that loads nothing from outside Kirim (templates/kirim/api_docs.html)."""
    view = SpectacularRedocView.as_view(url_name=schema_url_name, title=title, template_name="kirim/api_docs.html")

    def docs(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
        return response

    return docs


urlpatterns = [
    *second_factor.urls,  # before the admin's, whose own catch-all would take it
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path(WEBHOOK_ROUTE, whatsapp_webhook, name="whatsapp-webhook"),
    path("v1/openapi.json", SchemaView.as_view(patterns=v1_api), name="openapi"),
    path("v1/docs", docs_page("openapi", title="Kirim API"), name="api-docs"),
    path(
        "v1/graph/openapi.json",
        SchemaView.as_view(patterns=graph_urls, custom_settings=GRAPH_SCHEMA_SETTINGS),
        name="graph-openapi",
    ),
    path("v1/graph/docs", docs_page("graph-openapi", title=GRAPH_SCHEMA_SETTINGS["TITLE"]), name="graph-api-docs"),
    *v1_api,
    re_path(r"^v1/", unknown_endpoint),  # anything else under /v1/ is a JSON 404, never HTML
    *graph_urls,
    *unversioned_graph_urls,
    re_path(rf"^{VERSION_LIKE}/", unknown_graph_path),  # a version that is not one: Meta's error, never HTML
]

handler400 = bad_request
handler500 = server_error
