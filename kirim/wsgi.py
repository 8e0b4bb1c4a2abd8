"""The WSGI application: Django's handler, with Meta's webhooks served through a shorter middleware
chain of their own (settings.WEBHOOK_MIDDLEWARE). They are machine-to-machine POSTs, the busiest path
Kirim has: no session, user, CSRF token, flash message, frame policy or static file applies to them,
and those middleware cost a webhook ~0.2 ms of its ~2 (bench/ingest.py)."""

import os

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kirim.settings")


class HandlerWithMiddleware(WSGIHandler):
    """Django's handler with another middleware list than settings.MIDDLEWARE."""

    def __init__(self, middleware):
        self.middleware = middleware
        super().__init__()

    def load_middleware(self, is_async=False):
        # Django builds the chain from settings.MIDDLEWARE alone: this handler's list stands in for it
        # while the chain is built, once, as the application loads and before any request.
        everyone = settings.MIDDLEWARE
        settings.MIDDLEWARE = self.middleware
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = everyone


class ByPathPrefix:
    """Hands each request to the first handler whose path prefix it starts with, or to `default`."""

    def __init__(self, routes, default):
        self.routes, self.default = routes, default

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        handler = next((handler for prefix, handler in self.routes if path.startswith(prefix)), self.default)
        return handler(environ, start_response)


django_application = get_wsgi_application()  # first: it sets Django up, which the other handler needs
application = ByPathPrefix(
    [("/webhooks/", HandlerWithMiddleware(settings.WEBHOOK_MIDDLEWARE))], default=django_application
)
