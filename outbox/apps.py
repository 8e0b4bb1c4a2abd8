from django.apps import AppConfig
from django.db.models.signals import post_migrate

# What the managers' role (its group, inbox.models.ROLE_GROUPS) may do with events out.
MANAGER_PERMISSIONS = (
    "view_webhooksubscription", "add_webhooksubscription", "change_webhooksubscription",
    "delete_webhooksubscription", "view_delivery",
)  # fmt: skip


def grant_managers(app_config, using="default", **kwargs):
    """After migrate (when Django has made this app's permissions), give them to the managers' group."""
    from django.contrib.auth.models import Group, Permission

    from inbox.models import ROLE_GROUPS, Role

    group = Group.objects.using(using).filter(name=ROLE_GROUPS[Role.MANAGER]).first()
    if group is not None:
        group.permissions.add(
            *Permission.objects.using(using).filter(content_type__app_label="outbox", codename__in=MANAGER_PERMISSIONS)
        )


class OutboxConfig(AppConfig):
    name = "outbox"
    verbose_name = "Events out"

    def ready(self):
        post_migrate.connect(grant_managers, sender=self)
