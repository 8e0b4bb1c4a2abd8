"""Error reports to Sentry, off unless SENTRY_DSN is set, scrubbed by the logs' rule (core/logs.py):
an exception keeps its type and where it happened, never its message (which may quote a body) or a
local variable; a request keeps its method and URL pattern's path, never its body, query string,
cookies or headers (a key, a token, Meta's signature). Performance tracing is OpenTelemetry's
(core/tracing.py), not Sentry's."""

import logging
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration

from core import logs

# Request fields a report keeps: nothing a client sent but the method and the path.
KEPT_REQUEST_FIELDS = ("method", "url")


def start(dsn: str, *, environment: str | None = None, transport: Any = None) -> None:
    """Report unhandled errors (and ERROR log lines) to Sentry at `dsn`."""
    sentry_sdk.init(
        dsn=dsn,
        environment=environment or None,
        transport=transport,
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=None,
        # Log lines are breadcrumbs; an ERROR line becomes a report through ReportErrors, which sees
        # the exception the logs' redaction took off the record.
        integrations=[DjangoIntegration(transaction_style="url"), LoggingIntegration(event_level=None)],
        before_send=scrubbed,
        before_breadcrumb=scrubbed_breadcrumb,
    )
    root = logging.getLogger()
    if not any(isinstance(handler, ReportErrors) for handler in root.handlers):
        root.addHandler(ReportErrors(logging.ERROR))


class ReportErrors(logging.Handler):
    """An ERROR log line as an error report: its exception when it had one (`logger.exception`), else
    its message."""

    def emit(self, record: logging.LogRecord) -> None:
        error = getattr(record, "kirim_exception", None)
        if error is not None:
            sentry_sdk.capture_exception(error)
        else:
            sentry_sdk.capture_message(record.getMessage(), level="error")


def scrubbed(event: Any, hint: Any) -> Any:
    for exception in (event.get("exception") or {}).get("values", []):
        exception["value"] = logs.WITHHELD
        for frame in (exception.get("stacktrace") or {}).get("frames", []):
            frame.pop("vars", None)
    for thread in (event.get("threads") or {}).get("values", []):
        for frame in (thread.get("stacktrace") or {}).get("frames", []):
            frame.pop("vars", None)
    request = event.get("request")
    if request:
        url = str(request.get("url") or "").split("?", 1)[0]
        event["request"] = {name: request[name] for name in KEPT_REQUEST_FIELDS if name in request} | {"url": url}
    event.pop("extra", None)  # the logging integration's record attributes
    request_id = logs.request_id.get()
    if request_id:
        event.setdefault("tags", {})["request_id"] = request_id
    return event


def scrubbed_breadcrumb(crumb: Any, hint: Any) -> Any:
    """A log line keeps its message, already clean (the logs' rule), and loses the record's other
    attributes (the exception itself, Django's request); an HTTP call's URL loses its query."""
    if crumb.get("type") == "log":
        crumb["data"] = {}
        return crumb
    data = crumb.get("data") or {}
    if "url" in data:
        data["url"] = str(data["url"]).split("?", 1)[0]
    data.pop("http.query", None)
    return crumb
