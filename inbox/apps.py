import re

from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "inbox"

    def ready(self):
        # Meta's Graph surface is the inbox's door: errors under it, even those answered before any
        # view, are Meta's shape; media uploads have their own size limit.
        from core import surfaces
        from meta.errors import GRAPH_ID_PATH, GRAPH_PATH, meta_error_response

        surfaces.register(GRAPH_PATH, meta_error_response, "API_MAX_BODY_BYTES")
        surfaces.register(re.compile(GRAPH_ID_PATH + "/media$"), meta_error_response, "MEDIA_MAX_BODY_BYTES")
