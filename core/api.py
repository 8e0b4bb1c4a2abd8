"""API plumbing shared by every /v1/ view: envelopes, strict fields, health and JSON error handlers."""

import threading
from collections.abc import Callable
from typing import Any, ClassVar

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularJSONAPIView
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from core.envelopes import error_response
from core.errors import ApiError, InternalError, InvalidRequest, NotFound
from core.schema import data_envelope_schema
from core.surfaces import error_renderer_for

HEALTH_EVIDENCE_SECONDS = 1.0


class HealthSerializer(serializers.Serializer[dict[str, object]]):
    status = serializers.ChoiceField(choices=["ok"])
    version = serializers.CharField(help_text="The release serving this answer (CHANGELOG.md).")


def envelope(request: Request, data: object, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response({"data": data, "request_id": request.request_id}, status=status, headers=headers)  # type: ignore[attr-defined]  # RequestIdMiddleware


def list_envelope(
    request: Request, data: object, *, has_more: bool = False, next_cursor: str | None = None
) -> Response:
    return Response({"data": data, "has_more": has_more, "next_cursor": next_cursor, "request_id": request.request_id})  # type: ignore[attr-defined]  # RequestIdMiddleware


# Some character that str.strip() keeps, as the OpenAPI documents say it: their `\S` (ECMA-262's) would
# take \x1c-\x1f and \x85 for text, which Python strips.
NOT_ONLY_WHITESPACE = r"[^\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into strings. When it
    trims whitespace and refuses a blank, its pattern tells the OpenAPI documents so (the refusal
    itself is the trimming's)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.trim_whitespace and not self.allow_blank:
            self.validators.append(RegexValidator(NOT_ONLY_WHITESPACE))

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema(
    summary="Is Kirim up (and its database)?",
    auth=[],
    responses={200: data_envelope_schema("HealthResponse", HealthSerializer())},
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
def health(request: Request) -> Response:
    # Under load every pooled connection is busy and a query here would wait its turn behind them; a
    # connection that came back in good order a moment ago shows the database answering just as well.
    answered_within = getattr(connection, "answered_within", None)  # core.db.postgresql's pool keeps it
    if answered_within is None or not answered_within(HEALTH_EVIDENCE_SECONDS):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    return envelope(request, {"status": "ok", "version": settings.KIRIM_VERSION})


class SchemaView(SpectacularJSONAPIView):
    """An OpenAPI document, built once per process and path. drf-spectacular's first build loads its
    extensions lazily and is not thread-safe: concurrent first requests to a fresh worker answered
    500. A document depends on the code alone, so one build under a lock serves every later request."""

    build_lock = threading.Lock()
    built: ClassVar[dict[str, tuple[dict[str, Any], str]]] = {}  # request path -> (schema, Content-Disposition)

    def _get_schema_response(self, request: Request) -> Response:
        if request.path not in SchemaView.built:  # built already: no lock to wait on
            with SchemaView.build_lock:
                if request.path not in SchemaView.built:
                    response = super()._get_schema_response(request)  # type: ignore[no-untyped-call]  # drf-spectacular's
                    SchemaView.built[request.path] = (response.data, response["Content-Disposition"])
        schema, disposition = SchemaView.built[request.path]
        return Response(schema, headers={"Content-Disposition": disposition})


@csrf_exempt  # no session, no cookie: a POST to an unknown URL is a JSON 404 like any other method
def unknown_endpoint(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    return error_response(request, NotFound("No such endpoint. See /v1/openapi.json."))


def _json_for_api_paths(
    django_handler: Callable[..., HttpResponseBase], error_class: Callable[[], ApiError]
) -> Callable[..., HttpResponseBase]:
    """Django's error handler for the site's pages; JSON where the path's callers read JSON (error_renderer_for)."""

    def handler(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
        render = error_renderer_for(request.path)
        if render is None:
            return django_handler(request, *args, **kwargs)
        return render(request, error_class())

    return handler


bad_request = _json_for_api_paths(defaults.bad_request, InvalidRequest)
server_error = _json_for_api_paths(defaults.server_error, InternalError)
