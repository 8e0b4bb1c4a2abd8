"""What a thread lets go of before it waits on the network or a timer: nothing of the database may be
held across a wait (STYLE.md, "Network calls and locks")."""

from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper


class TransactionOpenWhileWaiting(AssertionError):
    """A call to Meta, or a wait for one, inside a database transaction: a bug."""


def hold_nothing() -> None:
    """Before waiting: no transaction may be open (checked when META_FORBID_IN_TRANSACTION is on, as
    in tests), and a pooled connection goes back to the pool, for other threads to use meanwhile."""
    for connection in connections.all(initialized_only=True):
        if settings.META_FORBID_IN_TRANSACTION and _in_transaction(connection):
            raise TransactionOpenWhileWaiting(f"a transaction is open on database {connection.alias!r}")
        if getattr(connection, "pool", None) and not connection.in_atomic_block:
            connection.close()  # with a pool, close() hands the connection back; the next query takes one


def _in_transaction(connection: BaseDatabaseWrapper) -> bool:
    # A test's own wrapping transaction (TestCase) is not the code's: it would not exist in production.
    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)
