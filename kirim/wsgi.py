"""The WSGI application: Django's, with Meta's webhook deliveries answered in front of it
(inbox.api.meta_webhooks.MetaDeliveries), Kirim's busiest requests."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kirim.settings")

django_application = get_wsgi_application()  # first: it sets Django up, which the doors' modules need

from inbox.api.meta_webhooks import MetaDeliveries

application = MetaDeliveries(django_application)
