from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularRedocView
from rest_framework.routers import SimpleRouter

from inbox.api import AccountsView, MessageViewSet, MeView
from inbox.webhooks import whatsapp_webhook
from kirim.api import bad_request, health, server_error, unknown_endpoint

router = SimpleRouter(trailing_slash=False)
router.register(r"(?P<phone_number_id>[0-9]{6,20})/messages", MessageViewSet, basename="message")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("webhooks/whatsapp", whatsapp_webhook, name="whatsapp-webhook"),
    path("v1/health", health),
    path("v1/openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("v1/docs", SpectacularRedocView.as_view(url_name="openapi"), name="api-docs"),
    path("v1/accounts", AccountsView.as_view()),
    path("v1/me", MeView.as_view()),
    path("v1/", include(router.urls)),
    re_path(r"^v1/", unknown_endpoint),  # anything else under /v1/ is a JSON 404, never HTML
]

handler400 = bad_request
handler500 = server_error
