"""The `Idempotency-Key` header for the API doors: the first answer to a key is kept and replayed,
with `Idempotent-Replayed: true`; the rule itself is inbox.services.idempotency's."""

import json

from django.http import JsonResponse

from core.envelopes import error_response
from core.errors import ApiError, InvalidField, UpstreamError
from inbox.services.idempotency import KEEP_OPEN, STORE, once, outcome_of

HEADER = "Idempotency-Key"


def run_once(request, *, org, scope, body, respond, render_error=error_response, restamp=True):
    """Answer with `respond(claim)` once per Idempotency-Key (`claim` is the key's, None without
    the header; a Claim, `taken_over` when an earlier request holding it died).

    `render_error` answers a refusal in the door's shape; `restamp`: a replay carries this request's
    id in its body (Kirim's envelope), or is the stored body exactly (Meta's shapes have no id)."""
    key = request.headers.get(HEADER)
    if key is None:
        return respond(None)
    if not key or len(key) > 255:
        raise InvalidField(HEADER, "The Idempotency-Key header takes 1 to 255 characters.")
    first = []

    def act(claim):
        outcome = STORE
        try:
            response = respond(claim)
        except UpstreamError as error:
            response, outcome = render_error(request, error), outcome_of(error)
        except ApiError as error:
            response = render_error(request, error)
        if response.status_code == 202:  # accepted, its outcome not known yet
            outcome = KEEP_OPEN
        first.append(response)
        body = response.data if hasattr(response, "data") else json.loads(response.content)
        return response.status_code, body, outcome

    status, stored_body, replayed = once(org=org, key=key, scope=scope, body=body, act=act)
    return _replay(request, status, stored_body, restamp=restamp) if replayed else first[0]


def _replay(request, status, body, *, restamp):
    if restamp:  # the stored answer under this request's id: the header and the body must agree
        if "error" in body:
            body = {"error": {**body["error"], "request_id": request.request_id}}
        else:
            body = {**body, "request_id": request.request_id}
    response = JsonResponse(body, status=status)
    response["Idempotent-Replayed"] = "true"
    return response
