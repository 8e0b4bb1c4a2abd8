"""The database: DATABASE_URL (SQLite by default), and on PostgreSQL the pool, prepared statements and
server-side cursors."""

from kirim.settings.environment import BASE_DIR, env

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "core.db.postgresql"  # Django's, with a health check that costs no query
    DATABASES["default"]["OPTIONS"] = {}
    # Parameters bound by the server let psycopg prepare a statement after its second run on a
    # connection: the hot path's statements skip planning, ~0.2 ms each (docs/benchmarks.md). A pooler
    # that cannot keep prepared statements (PgBouncer before 1.21 in transaction mode) needs it off.
    # Pooled connections keep theirs from request to request.
    # A fast path, with its plain path and their equivalence test: docs/development/performance.md.
    if env.bool("DB_PREPARED_STATEMENTS", default=True):
        DATABASES["default"]["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": 2}
    # A pooler in transaction mode hands each transaction a different server connection: a cursor
    # kept open across transactions would be lost (Django's .iterator() outside a transaction).
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = not env.bool("DB_SERVER_SIDE_CURSORS", default=True)
    # Connections per worker process, shared by its threads: a thread takes one for its queries and
    # gives it back while it waits on Meta (core/db/waiting.py), so far fewer are needed than threads.
    # 0: no pool, a connection per thread kept CONN_MAX_AGE seconds.
    DB_POOL_SIZE = env.int("DB_POOL_SIZE", default=3)
    if DB_POOL_SIZE:
        DATABASES["default"]["OPTIONS"]["pool"] = {"min_size": 1, "max_size": DB_POOL_SIZE, "timeout": 10}
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django's pool hands connections back after each request
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = False  # the backend checks each one the pool hands out
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)  # per thread
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite ignores SELECT ... FOR UPDATE; taking the write lock when a transaction begins keeps
    # "one Meta call per message" true on the development database too.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 30}
