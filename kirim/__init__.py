# The release, as CHANGELOG.md names it: `manage.py kirim_version` prints it and /v1/health answers it.
__version__ = "1.0.0"
