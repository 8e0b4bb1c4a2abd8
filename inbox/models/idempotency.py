"""Idempotency-Key records: the first answer to a key, kept per org and replayed."""

from django.db import models

from orgs.models import Org


class IdempotencyRecord(models.Model):
    """The first response to a send with an `Idempotency-Key`, per org, kept 24 hours. The unique
    constraint is what makes a key claimable once across processes and hosts."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress"
        DONE = "done"

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_digest = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    # While in progress: after this, the request holding the key is taken for dead and a retry takes over.
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = (models.UniqueConstraint(fields=("org", "key"), name="idempotency_key_unique_per_org"),)
