"""The API surfaces Kirim serves beside its pages, each with its own error shape and body limit.

What core answers before or outside any view (a refused body, an unknown path, a crash) must know
which surface a path is on. Kirim's envelope covers /v1/ and /webhooks/; a door with another shape
registers its paths when its app is ready (inbox: Meta's Graph paths), so core knows no URL of theirs."""

import re
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core.envelopes import error_response
from core.errors import ApiError

Renderer = Callable[[HttpRequest, ApiError], HttpResponse]


@dataclass(frozen=True)
class Surface:
    pattern: re.Pattern[str]
    render: Renderer
    body_limit_setting: str  # the setting that holds the size limit of the bodies sent to it


_surfaces: list[Surface] = [
    Surface(re.compile(r"^/v1/"), error_response, "API_MAX_BODY_BYTES"),
    Surface(re.compile(r"^/webhooks/"), error_response, "WEBHOOK_MAX_BODY_BYTES"),
]


def register(pattern: re.Pattern[str], render: Renderer, body_limit_setting: str) -> None:
    """Add a surface ahead of those registered before it: the first whose pattern matches a path is
    that path's surface, so a narrower pattern registers after the wider one it is part of."""
    _surfaces.insert(0, Surface(pattern, render, body_limit_setting))


def _surface_of(path: str) -> Surface | None:
    return next((surface for surface in _surfaces if surface.pattern.match(path)), None)


def error_renderer_for(path: str) -> Renderer | None:
    """How an error at `path` is answered; None for the pages people use (Django's own)."""
    surface = _surface_of(path)
    return surface.render if surface else None


def body_limit_for(path: str) -> int | None:
    """The size limit for a body sent to `path`, or None for paths outside every surface."""
    surface = _surface_of(path)
    return getattr(settings, surface.body_limit_setting) if surface else None
