"""Django's PostgreSQL backend, with a health check that needs no round trip.

A connection is checked before a request uses it: a kept one (CONN_HEALTH_CHECKS) before each reuse,
a pooled one each time the pool hands it out. Django's check runs `SELECT 1` and psycopg's pool an
empty query, a round trip on every API request (0.3 ms of a read receipt's 3 on the bench machine).
A server that restarts, fails over or ends the session says goodbye and closes the socket, so the
socket of an idle connection turns readable; a healthy idle connection has nothing to read.

It also remembers when a connection of this process last came back to the pool in good order: proof
that the database answered lately, which /v1/health uses instead of queueing for a connection behind
every busy request. And it shows the pool to the metrics (core.metrics.pool_watch) as connections
are taken and handed back."""

import select
import time
from typing import Any

import psycopg
from django.db.backends.postgresql import base
from psycopg import pq

from core.metrics import pool_watch


def _in_good_order(pgconn: pq.abc.PGconn) -> bool:
    return pgconn.status == pq.ConnStatus.OK and pgconn.transaction_status == pq.TransactionStatus.IDLE


def _quiet_and_idle(pgconn: pq.abc.PGconn) -> bool:
    if not _in_good_order(pgconn):
        return False
    poll = select.poll()
    poll.register(pgconn.socket, select.POLLIN)
    return not poll.poll(0)  # anything waiting on an idle connection is the server's goodbye


# A fast path, with its plain path and their equivalence test: docs/development/performance.md.
class DatabaseWrapper(base.DatabaseWrapper):
    answered_at: float | None = None  # time.monotonic() of the last connection back in good order, in this process

    def answered_within(self, seconds: float) -> bool:
        return DatabaseWrapper.answered_at is not None and time.monotonic() - DatabaseWrapper.answered_at < seconds

    def _close(self) -> None:
        if self.pool and self.connection is not None and _in_good_order(self.connection.pgconn):
            DatabaseWrapper.answered_at = time.monotonic()
        super()._close()  # type: ignore[misc]  # private in Django, so absent from its stubs
        if self.pool:
            pool_watch.look(self.pool)

    def _set_autocommit(self, autocommit: bool) -> None:
        # Django sets it on every checkout from the pool, where it is already set; psycopg takes the
        # connection's lock and runs a wait loop even to set what is set.
        if self.connection.autocommit != autocommit:
            super()._set_autocommit(autocommit)  # type: ignore[misc]  # private in Django, so absent from its stubs

    def is_usable(self) -> bool:
        return _quiet_and_idle(self.connection.pgconn)

    def get_new_connection(self, conn_params: dict[str, Any]) -> psycopg.Connection[Any]:
        connection: psycopg.Connection[Any] = super().get_new_connection(conn_params)
        while self.pool and not _quiet_and_idle(connection.pgconn):
            connection.close()  # the pool drops a closed connection and opens another in its place
            self.pool.putconn(connection)
            connection = super().get_new_connection(conn_params)
        if self.pool:
            pool_watch.look(self.pool)
        return connection
