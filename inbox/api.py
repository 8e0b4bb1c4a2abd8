"""/v1/{phone_number_id}/messages: one endpoint that sends messages and marks them read, as on Meta."""

from rest_framework import viewsets

from kirim.api import PhoneNumberScopedMixin
from kirim.errors import InvalidField, InvalidRequest, MissingField
from receipts.api import read_receipt


class MessageViewSet(PhoneNumberScopedMixin, viewsets.GenericViewSet):
    def create(self, request, phone_number_id):
        body = request.data
        if not isinstance(body, dict):
            raise InvalidRequest("The body must be a JSON object.", code="invalid_json")
        if "status" in body and "type" in body:
            raise InvalidField("type", "Send `status` to mark a message read or `type` to send one, not both.")
        if "status" in body:
            return read_receipt(request, self.phone_number, body)
        raise MissingField("type", "Send `type` to send a message, or `status` to mark one read.")
