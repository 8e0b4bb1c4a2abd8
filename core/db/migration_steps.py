"""Migration steps that Django has no operation for."""

from collections.abc import Callable, Iterable, Mapping

from django.apps.registry import Apps
from django.contrib.auth.management import create_permissions
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

# What RunPython runs: the historical models, and the schema editor of the database migrated.
MigrationFunction = Callable[[Apps, BaseDatabaseSchemaEditor], None]


def unlogged(app_label: str, model_name: str) -> migrations.RunPython:
    """The model's table UNLOGGED on PostgreSQL (and LOGGED again when reversed); nothing elsewhere.
    For counters that need not survive a crash: their writes skip the write-ahead log and its flush at
    commit, and a crash empties the table."""

    def set_logged(logged: bool) -> MigrationFunction:
        def change(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
            if schema_editor.connection.vendor == "postgresql":
                table = schema_editor.quote_name(apps.get_model(app_label, model_name)._meta.db_table)
                schema_editor.execute(f"ALTER TABLE {table} SET {'LOGGED' if logged else 'UNLOGGED'}")

        return change

    return migrations.RunPython(set_logged(False), set_logged(True))


def indexes_swapped(
    app_label: str,
    model_name: str,
    *,
    own: Iterable[str] = (),
    like: Iterable[str] = (),
    added: Iterable[models.Index] = (),
) -> migrations.RunPython:
    """Drop the indexes Django made of its own for fields `own` (db_index, a foreign key's) and `like`
    (on PostgreSQL, the varchar_pattern_ops one beside a unique or indexed varchar, for LIKE 'prefix%'),
    and make the `added` ones; the other way round when unapplied. On PostgreSQL each is built and
    dropped CONCURRENTLY, so webhooks and sends go on writing meanwhile: the migration must not be
    atomic, and a build that fails leaves an INVALID index to drop before running it again. An
    AlterField(db_index=False) on a foreign key would instead drop and re-add its constraint, locking
    the table it points at and checking every row again: put the AlterFields in
    SeparateDatabaseAndState's state_operations, and this as its database_operations."""

    def change(forwards: bool) -> MigrationFunction:
        def step(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
            model = apps.get_model(app_label, model_name)
            on_postgresql = schema_editor.connection.vendor == "postgresql"
            kinds: list[tuple[str, str, tuple[str, ...]]] = [(name, "", ()) for name in own]
            kinds += [(name, "_like", ("varchar_pattern_ops",)) for name in like] if on_postgresql else []
            djangos = [
                models.Index(fields=[name], opclasses=opclasses, name=schema_editor._create_index_name(  # type: ignore[attr-defined]  # private: Django's own name
                    model._meta.db_table, [model._meta.get_field(name).column], suffix=suffix
                ))
                for name, suffix, opclasses in kinds
            ]  # fmt: skip
            make, drop = (added, djangos) if forwards else (djangos, added)
            online = {"concurrently": True} if on_postgresql else {}
            for index in make:
                schema_editor.add_index(model, index, **online)
            for index in drop:
                schema_editor.remove_index(model, index, **online)

        return step

    return migrations.RunPython(change(forwards=True), change(forwards=False))


def permissions_granter(app_label: str, codenames_by_group: Mapping[str, Iterable[str]]) -> MigrationFunction:
    """A migration function: each group (made when missing) gets its codenames of `app_label`'s
    permissions. Django makes permissions only after the last migration (post_migrate); the groups
    need them now, so those of `app_label`, the only ones granted, are made first."""

    def grant(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        app_config = apps.get_app_config(app_label)
        app_config.models_module = True  # type: ignore[assignment]  # any true value: "has models"
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
        Group, Permission = apps.get_model("auth", "Group"), apps.get_model("auth", "Permission")
        for name, codenames in codenames_by_group.items():
            group, _ = Group.objects.get_or_create(name=name)
            group.permissions.add(*Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames))

    return grant
