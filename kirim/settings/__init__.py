"""Every setting Kirim reads, read here once from the environment (and `.env` when present), one
module per concern; Django reads them all from this package (DJANGO_SETTINGS_MODULE=kirim.settings)."""

from kirim.settings.base import *
from kirim.settings.database import *
from kirim.settings.environment import *
from kirim.settings.framework import *
from kirim.settings.gateway import *
from kirim.settings.observability import *
from kirim.settings.workers import *
