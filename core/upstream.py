"""Calls to other services (Meta, subscribers): how many a request made, for its log line, and whether
a failed one can have reached the other end."""

import contextvars

import requests
import urllib3


class CallLog:
    """Meta calls made while handling the current request, for its log line."""

    def __init__(self) -> None:
        self._calls: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("meta_calls", default=None)

    def start(self) -> None:
        self._calls.set([])

    def record(self, seconds: float) -> None:
        calls = self._calls.get()
        if calls is not None:
            calls.append(seconds)

    def summary(self) -> tuple[int, float]:
        calls = self._calls.get() or []
        return len(calls), round(sum(calls) * 1000, 1)


calls_made = CallLog()


def never_sent(error: requests.RequestException) -> bool:
    """True when a requests ConnectionError says the connection was never made, so the other end cannot
    have received the request (Meta's calls ask this too, before they retry a send)."""
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(error, requests.ConnectTimeout) or isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    )
