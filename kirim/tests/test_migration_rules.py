"""The upgrade rules of docs/operations/upgrades.md that a reading of the migrations can hold: a migration
of this release that alters more than one table of the previous release is not atomic, so it never
holds one table's lock while it waits for another's (test_upgrade.py met that deadlock)."""

from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations.base import Operation
from django.db.migrations.operations.models import CreateModel

# The last migration of each app in the previous release (kirim/tests/test_upgrade.py's PREVIOUS_RELEASE).
PREVIOUS_RELEASE_LAST = {"inbox": "0021_rate_limit_zero_stops", "outbox": "0005_delivery_tasks_queued_once"}


def altered_tables(migration):
    """The models a migration alters that it did not create itself."""
    created = {op.name.lower() for op in migration.operations if isinstance(op, CreateModel)}
    altered = set()
    for operation in migration.operations:
        model = getattr(operation, "model_name", None)
        if isinstance(operation, Operation) and model and model.lower() not in created:
            altered.add(model.lower())
    return altered


def test_migrations_altering_several_of_the_previous_releases_tables_are_not_atomic():
    on_disk = MigrationLoader(None, ignore_no_migrations=True).disk_migrations  # no database needed
    several = [
        migration
        for (app, name), migration in sorted(on_disk.items())
        if app in PREVIOUS_RELEASE_LAST and name > PREVIOUS_RELEASE_LAST[app] and len(altered_tables(migration)) > 1
    ]

    assert several  # the rule has migrations to hold (0024, 0026 ...)
    assert [f"{m.app_label}.{m.name}" for m in several if m.atomic] == []
