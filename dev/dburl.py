"""The DATABASE_URL of a configured database, for starting other processes on the same one (tests
of several servers, benchmarks)."""


def database_url(settings_dict):
    db = settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
