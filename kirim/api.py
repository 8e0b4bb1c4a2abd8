"""API plumbing shared by every /v1/ view: envelopes, strict fields, health and JSON error handlers."""

from django.db import connection
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.response import Response

from kirim.errors import InternalError, InvalidRequest, NotFound, error_response
from kirim.meta_errors import GRAPH_PATH, meta_error_response
from kirim.schema import data_envelope_schema


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok"])


def envelope(request, data, *, status=200, headers=None):
    return Response({"data": data, "request_id": request.request_id}, status=status, headers=headers)


def list_envelope(request, data, *, has_more=False, next_cursor=None):
    return Response({"data": data, "has_more": has_more, "next_cursor": next_cursor, "request_id": request.request_id})


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into strings."""

    def to_internal_value(self, data):
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
def health(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return envelope(request, {"status": "ok"})


@csrf_exempt  # no session, no cookie: a POST to an unknown URL is a JSON 404 like any other method
def unknown_endpoint(request, *args, **kwargs):
    return error_response(request, NotFound("No such endpoint. See /v1/openapi.json."))


@csrf_exempt
def unknown_graph_path(request, *args, **kwargs):
    return meta_error_response(request, NotFound(f"Unknown path components: {request.path}"))


def _json_for_api_paths(django_handler, error_class):
    """Django's error handler for the site; the contract's envelope under /v1/, Meta's under /{version}/."""

    def handler(request, *args, **kwargs):
        if request.path.startswith("/v1/"):
            return error_response(request, error_class())
        if GRAPH_PATH.match(request.path):
            return meta_error_response(request, error_class())
        return django_handler(request, *args, **kwargs)

    return handler


bad_request = _json_for_api_paths(defaults.bad_request, InvalidRequest)
server_error = _json_for_api_paths(defaults.server_error, InternalError)
