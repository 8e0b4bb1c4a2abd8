# The release, as CHANGELOG.md names it: `manage.py version` prints it and /v1/health answers it.
__version__ = "1.0.0"
