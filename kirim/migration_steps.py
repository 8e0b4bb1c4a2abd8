"""Migration steps that Django has no operation for."""

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
