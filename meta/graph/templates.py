"""The message templates of a number's WABA, a page at a time."""

from dataclasses import dataclass

from django.conf import settings

from meta.graph.client import Json, PhoneNumber, auth_headers, graph_call, json_object, session, upstream_error

# Meta's own filters of GET /{waba_id}/message_templates (and `summary`, the counts to add), passed on.
TEMPLATE_FILTERS = (
    "fields", "status", "name", "category", "language", "content", "name_or_content", "quality_score", "summary",
)  # fmt: skip


@dataclass(frozen=True)
class TemplatePage:
    templates: list[Json]  # Meta's template objects, untouched
    after: str | None  # cursor of the next page; None on the last one
    before: str | None  # cursor of the previous page; None on the first one
    summary: Json | None = None  # Meta's counts, when asked for with `summary`


def message_templates(
    phone_number: PhoneNumber,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = 25,
    filters: dict[str, str] | None = None,
) -> TemplatePage:
    """One page of the message templates of the WABA that owns `phone_number`, read with its token,
    in Meta's order; page on with `after` (or back with `before`). `filters`: TEMPLATE_FILTERS."""
    if not phone_number.waba_id:
        raise upstream_error("This number has no WABA id: set it to list its templates.")
    params: dict[str, str | int | None] = {
        name: value for name, value in (filters or {}).items() if name in TEMPLATE_FILTERS and value
    }
    params.update({"limit": limit, "after": after, "before": before})
    url = f"{settings.META_GRAPH_URL}/{phone_number.waba_id}/message_templates"
    answer = graph_call(
        lambda timeout: session.get(url, params=params, headers=auth_headers(phone_number), timeout=timeout),
        idempotent=True,
        operation="message_templates",
    )
    data = answer.get("data")
    paging = json_object(answer.get("paging"))
    cursors = json_object(paging.get("cursors"))
    return TemplatePage(
        templates=[template for template in data if isinstance(template, dict)] if isinstance(data, list) else [],
        after=cursors.get("after") if paging.get("next") else None,
        before=cursors.get("before") if paging.get("previous") else None,
        summary=answer.get("summary") if isinstance(answer.get("summary"), dict) else None,
    )
