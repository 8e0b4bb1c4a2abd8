"""One JSON log format for every logger (Kirim's, Django's, gunicorn's, the task workers'), each line
with the request id and the trace id where there is one; and logs never carry request bodies,
tracebacks included.

An exception's message may quote what it choked on: PostgreSQL quotes the JSON it refused, a
UnicodeEncodeError the text, a ValueError the value. So every log record is redacted when it is
made, whichever logger or handler it goes to (Django's, gunicorn's, a test's): an exception keeps
its type and where it happened (file, line, function and that line of code; no local variables) and
loses its message; an exception passed as a log argument is reduced to its type's name."""

import contextvars
import datetime
import json
import logging
import logging.config
import traceback
from collections.abc import Callable
from typing import Any

WITHHELD = "(message withheld from logs)"


class RedactingFactory:
    """The record factory it wraps, each record redacted and stamped with the request and trace ids;
    installed once however often logging is set up."""

    def __init__(self, factory: Callable[..., logging.LogRecord]) -> None:
        self.factory = factory

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = redact(self.factory(*args, **kwargs))
        # Taken when the record is made: a handler may format it later, outside the request.
        record.kirim_request_id, record.kirim_trace_id = request_id.get(), current_trace_id()
        return record


def configure(config: dict[str, Any]) -> None:
    """Django's LOGGING_CONFIG: the redacting record factory, then the LOGGING dict as usual."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, RedactingFactory):
        logging.setLogRecordFactory(RedactingFactory(factory))
    logging.config.dictConfig(config)


def redact(record: logging.LogRecord) -> logging.LogRecord:
    if record.exc_info and record.exc_info[1] is not None:
        record.exc_text = redacted_traceback(record.exc_info[1])
        record.kirim_exception = record.exc_info[1]  # for error reports, which scrub it themselves
        record.exc_info = None  # no handler may format the original
    if isinstance(record.msg, BaseException):
        record.msg = _name(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_name(arg) if isinstance(arg, BaseException) else arg for arg in record.args)
    elif isinstance(record.args, dict):
        record.args = {k: _name(v) if isinstance(v, BaseException) else v for k, v in record.args.items()}
    return record


def redacted_traceback(error: BaseException, seen: set[int] | None = None) -> str:
    """Python's traceback of `error`, its causes and contexts included, without their messages."""
    seen = seen if seen is not None else set()
    seen.add(id(error))
    parts = []
    if error.__cause__ is not None and id(error.__cause__) not in seen:
        parts += [redacted_traceback(error.__cause__, seen), "\nThe above exception was the direct cause of:\n"]
    elif error.__context__ is not None and not error.__suppress_context__ and id(error.__context__) not in seen:
        parts += [redacted_traceback(error.__context__, seen), "\nDuring handling of the above, another occurred:\n"]
    frames = "".join(traceback.format_list(traceback.extract_tb(error.__traceback__)))
    parts.append(f"Traceback (most recent call last):\n{frames}{_name(error)} {WITHHELD}")
    return "\n".join(parts)


def _name(error: BaseException) -> str:
    kind = type(error)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


# The request being served by this thread, for every line logged while serving it.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def no_trace() -> str | None:
    return None


# The current trace's id (hex), or None; core.tracing puts OpenTelemetry's here when traces are on.
current_trace_id = no_trace


class LogFields(dict[str, Any]):
    """A log message that is a set of fields: the JSON line carries them at its top level, and as
    text (a test's `record.getMessage()`) it is their JSON."""

    def __str__(self) -> str:
        return json.dumps(self)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message (or a LogFields' fields), request_id,
    trace_id, and the exception's redacted traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        if isinstance(record.msg, LogFields):
            line.update(record.msg)
        else:
            line["message"] = record.getMessage()
        line.setdefault("request_id", getattr(record, "kirim_request_id", None) or request_id.get())
        trace_id = getattr(record, "kirim_trace_id", None) or current_trace_id()
        if trace_id:
            line["trace_id"] = trace_id
        if record.exc_info and record.exc_info[1] is not None:  # a record made before redaction was installed
            line["exception"] = redacted_traceback(record.exc_info[1])
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, default=str)
