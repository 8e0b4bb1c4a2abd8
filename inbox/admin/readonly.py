"""Pages of rows written elsewhere (Meta's webhooks, the audit log's one writer): shown, never added,
changed or deleted in the admin."""


class ReadOnly:
    """Mixed in before the admin class it makes read-only (OrgScopedAdmin, or Django's ModelAdmin)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
