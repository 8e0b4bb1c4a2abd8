"""Health an orchestrator can use: liveness (the process answers) and readiness (it can serve:
the database answers and every migration is applied), with what the apps report beside it.

Readiness says whether this host should get traffic: a load balancer points at it. The workers'
heartbeats and the events-out backlog are in its details, for a person or an alert to read, and do
not make it fail: a web host serves as well while the task workers (maybe on other hosts) are away."""

import logging
from collections.abc import Callable, Mapping
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import envelope
from core.schema import data_envelope_schema

logger = logging.getLogger("kirim.health")

# Details an app reports in readiness: name -> a callable answering a JSON-able mapping (a TypedDict
# fits) from the database.
Detail = Callable[[], Mapping[str, object]]
_details: dict[str, Detail] = {}


def register_detail(name: str, read: Detail) -> None:
    """Report `read()` under `name` in readiness's details (an app's AppConfig.ready registers its own)."""
    _details[name] = read


class _Migrations:
    """Whether every migration is applied: looked at until it is so, then remembered (a process's
    code does not change under it)."""

    applied = False

    def check(self, connection: BaseDatabaseWrapper) -> bool:
        if not self.applied:
            executor = MigrationExecutor(connection)
            self.applied = not executor.migration_plan(executor.loader.graph.leaf_nodes())
        return self.applied


migrations = _Migrations()


class LivenessSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["alive"])


class ReadinessSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["ready", "not_ready"])
    checks = serializers.DictField(child=serializers.CharField(), help_text="database, migrations: ok or why not")
    details = serializers.DictField(help_text="What the apps report: workers' heartbeats, events-out backlog")


def _bare(view: Callable[..., Any]) -> Callable[..., Any]:
    """No key, no rate limit: an orchestrator asks without one."""
    return authentication_classes([])(permission_classes([])(throttle_classes([])(view)))


@extend_schema(
    summary="Does the process answer? (no database)",
    auth=[],
    responses={200: data_envelope_schema("LivenessResponse", LivenessSerializer())},
)
@api_view(["GET"])
@_bare
def live(request: Request) -> Response:
    return envelope(request, {"status": "alive"})


@extend_schema(
    summary="Can this host serve? (database reachable, migrations applied; 503 when not)",
    auth=[],
    responses={
        200: data_envelope_schema("ReadinessResponse", ReadinessSerializer()),
        503: data_envelope_schema("NotReadyResponse", ReadinessSerializer()),
    },
)
@api_view(["GET"])
@_bare
def ready(request: Request) -> Response:
    checks = {"database": "ok", "migrations": "ok"}
    details = {}
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        if not migrations.check(connection):
            checks["migrations"] = "pending: run `manage.py migrate`"
    except DatabaseError as error:  # not ready is the answer; the error's text may quote anything
        logger.warning("readiness: the database did not answer (%s)", type(error).__name__)
        checks["database"] = f"unreachable ({type(error).__name__})"
        checks["migrations"] = "unknown"
    if checks["migrations"] == "ok":  # the apps' tables are there
        details = {name: _detail(read) for name, read in _details.items()}
    is_ready = all(value == "ok" for value in checks.values())
    data = {"status": "ready" if is_ready else "not_ready", "checks": checks, "details": details}
    return envelope(request, data, status=200 if is_ready else 503)


def _detail(read: Detail) -> Mapping[str, object]:
    try:
        return read()
    except DatabaseError as error:  # a detail, not the verdict: the database answered the checks just now
        return {"error": type(error).__name__}
