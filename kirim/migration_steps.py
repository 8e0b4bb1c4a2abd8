"""Migration steps that Django has no operation for."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def unlogged(app_label, model_name):
    """The model's table UNLOGGED on PostgreSQL (and LOGGED again when reversed); nothing elsewhere.
    For counters that need not survive a crash: their writes skip the write-ahead log and its flush at
    commit, and a crash empties the table."""

    def set_logged(logged):
        def change(apps, schema_editor):
            if schema_editor.connection.vendor == "postgresql":
                table = schema_editor.quote_name(apps.get_model(app_label, model_name)._meta.db_table)
                schema_editor.execute(f"ALTER TABLE {table} SET {'LOGGED' if logged else 'UNLOGGED'}")

        return change

    return migrations.RunPython(set_logged(False), set_logged(True))


def without_like_indexes(app_label, model_name, *field_names):
    """Drop the varchar_pattern_ops index that Django's PostgreSQL backend adds beside each unique or
    indexed varchar field, for LIKE 'prefix%' (and make it again when reversed); nothing elsewhere.
    Every row written is written into each index: a field nobody matches by prefix needs none. The
    index is named and made as Django names and makes it, so a later AlterField finds it as usual."""

    def change(create):
        def step(apps, schema_editor):
            if schema_editor.connection.vendor != "postgresql":
                return
            model = apps.get_model(app_label, model_name)
            for field in map(model._meta.get_field, field_names):
                if create:
                    schema_editor.execute(schema_editor._create_like_index_sql(model, field))
                else:
                    name = schema_editor._create_index_name(model._meta.db_table, [field.column], suffix="_like")
                    schema_editor.execute(schema_editor._delete_index_sql(model, name))

        return step

    return migrations.RunPython(change(create=False), change(create=True))


def permissions_granter(app_label, codenames_by_group):
    """A migration function: each group (made when missing) gets its codenames of `app_label`'s
    permissions. Django makes permissions only after the last migration (post_migrate); the groups
    need them now, so those of `app_label`, the only ones granted, are made first."""

    def grant(apps, schema_editor):
        app_config = apps.get_app_config(app_label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
        Group, Permission = apps.get_model("auth", "Group"), apps.get_model("auth", "Permission")
        for name, codenames in codenames_by_group.items():
            group, _ = Group.objects.get_or_create(name=name)
            group.permissions.add(*Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames))

    return grant
