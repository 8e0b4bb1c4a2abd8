"""The floor for webhook ingestion (bench/ingest.py): a minimal Django site whose one view verifies
Meta's signature, parses the body and inserts the message with one statement. No middleware, no
ORM, no event kept: what any Django webhook receiver costs at least.

    gunicorn -c gunicorn.conf.py --pythonpath bench minimal_webhook:application
"""

import hashlib
import hmac
import json
import os

import django
import environ
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.http import HttpResponse
from django.urls import path

TABLE = "bench_minimal_message"  # bench/ingest.py creates it
SECRET = os.environ["META_APP_SECRET"].encode()


def webhook(request):
    expected = "sha256=" + hmac.new(SECRET, request.body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(request.headers.get("X-Hub-Signature-256", ""), expected):
        return HttpResponse("Invalid signature", status=401)
    value = json.loads(request.body)["entry"][0]["changes"][0]["value"]
    message = value["messages"][0]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (wamid, phone_number_id, sender, body) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (wamid) DO NOTHING",
            [message["id"], value["metadata"]["phone_number_id"], message["from"], json.dumps(message)],
        )
    return HttpResponse("OK")


settings.configure(
    DEBUG=False,
    SECRET_KEY="bench",
    ALLOWED_HOSTS=["127.0.0.1"],
    ROOT_URLCONF=__name__,
    # Connections kept and statements prepared, as Kirim's are: the floor, not a straw man.
    DATABASES={
        "default": {
            **environ.Env.db_url_config(os.environ["DATABASE_URL"]),
            "CONN_MAX_AGE": 60,
            "OPTIONS": {"server_side_binding": True, "prepare_threshold": 2},
        }
    },
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
)
urlpatterns = [path("webhooks/whatsapp", webhook)]
django.setup()
application = get_wsgi_application()
