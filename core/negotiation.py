"""Content negotiation for /v1/ (kept apart from core.api, which imports DRF's views)."""

from collections.abc import Iterable, Sequence

from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

from core.errors import UnsupportedMediaType


class JsonOnlyNegotiation(BaseContentNegotiation):
    """Always JSON, whatever the Accept header says: the API has one representation."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser:
        for parser in parsers:
            if parser.media_type == request.content_type.split(";")[0].strip():
                return parser
        # What this endpoint takes: a parser's `body_hint` where the media type alone does not say it.
        wanted = " or ".join(getattr(parser, "body_hint", parser.media_type) for parser in parsers)
        raise UnsupportedMediaType(f"Send the body as {wanted}.")

    def select_renderer(
        self,
        request: Request,
        renderers: Sequence[BaseRenderer],  # type: ignore[override]  # DRF hands a list; its stubs say any iterable
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type
