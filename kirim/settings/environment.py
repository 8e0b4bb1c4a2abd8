"""Where the settings come from: the environment, and `.env` when present; the readers every settings
module uses (a missing required one raises ImproperlyConfigured naming it)."""

import ipaddress
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # real environment variables win over the file


def required(name):
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(f"Set the {name} environment variable (or put it in .env).")
    return value


def networks(name):
    """A comma-separated list of CIDRs (`10.20.0.0/16,fd00:1::/64`) as ip_network objects."""
    try:
        return [ipaddress.ip_network(cidr.strip()) for cidr in env.list(name, default=[]) if cidr.strip()]
    except ValueError as error:
        raise ImproperlyConfigured(f"{name}: {error}.") from None
