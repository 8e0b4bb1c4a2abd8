"""The managers' role gets events out: subscriptions and their deliveries. Operators adjust the group
in the admin afterwards; until now a post_migrate hook granted these again on every migrate."""

from django.db import migrations

from core.db.migration_steps import permissions_granter

MANAGER_PERMISSIONS = [
    "view_webhooksubscription", "add_webhooksubscription", "change_webhooksubscription",
    "delete_webhooksubscription", "view_delivery",
]  # fmt: skip
grant_managers = permissions_granter("outbox", {"Kirim managers": MANAGER_PERMISSIONS})


class Migration(migrations.Migration):
    dependencies = [("outbox", "0002_ordering"), ("inbox", "0009_memberships")]

    operations = [migrations.RunPython(grant_managers, migrations.RunPython.noop)]
