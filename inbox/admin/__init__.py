"""The staff inbox in the Django admin, one module per page family. Every org-owned admin is an
OrgScopedAdmin (orgs/scope.py): staff see their orgs' rows only. Secrets are write-only here.
Django's autodiscovery imports this package; importing the modules registers their admins."""

from django.contrib import admin

from inbox.admin import business, conversations, labels, messages, numbers, orgs, team, webhook_events

admin.site.site_header = "Kirim"
admin.site.site_title = "Kirim inbox"
admin.site.index_title = "WhatsApp inbox"
admin.site.site_url = "/v1/docs"  # "View site": Kirim has no public site; its API docs are the front page

__all__ = ["business", "conversations", "labels", "messages", "numbers", "orgs", "team", "webhook_events"]
