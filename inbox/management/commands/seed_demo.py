import secrets
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from fakemeta.server import new_wamid
from inbox.models import ApiKey, Direction, Message, Org, PhoneNumber, Status

DEMO_SLUG = "demo"
DEMO_PHONE_NUMBER_ID = "106540352242922"
CONVERSATIONS = [
    ("6281234567801", "Siti Rahma", ["Halo, is the shop open today?", "And do you deliver to Bandung?"]),
    ("6281234567802", "Budi Santoso", ["My order #4411 has not arrived"]),
    ("6281234567803", "Ayu Lestari", ["Thank you! The coffee was great"]),
]

BANNER = """
Demo org "Demo Coffee" is ready; its API key, number and an unread wamid are in {env_file}.

  Admin inbox:  {base_url}/admin/   user admin, password {password}
  Health:       curl {base_url}/v1/health

Mark the newest demo message read (in another terminal, from this folder):

  source .kirim-demo.env
  curl -X POST {base_url}/v1/$PHONE_ID/messages \\
    -H "Authorization: Bearer $KIRIM_KEY" -H "Content-Type: application/json" \\
    -d '{{"messaging_product": "whatsapp", "status": "read", "message_id": "'$WAMID'"}}'

What the Meta stand-in received:  curl {meta_url}/_stand_in/requests
"""


class Command(BaseCommand):
    help = (
        "Reset the demo org: a number, an API key, an admin user and a few conversations. "
        "Writes what to curl into .kirim-demo.env."
    )

    def add_arguments(self, parser):
        parser.add_argument("--env-file", default=str(Path(settings.BASE_DIR) / ".kirim-demo.env"))
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="where Kirim will listen")
        parser.add_argument("--meta-url", default="http://127.0.0.1:8081", help="where the Meta stand-in listens")

    @transaction.atomic
    def handle(self, *, env_file, base_url, meta_url, **options):
        Org.objects.filter(slug=DEMO_SLUG).delete()
        org = Org.objects.create(name="Demo Coffee", slug=DEMO_SLUG)
        number = PhoneNumber.objects.create(
            org=org,
            phone_number_id=DEMO_PHONE_NUMBER_ID,
            display_phone_number="+62 811 0000 0001",
            waba_id="102290129340398",
            access_token="demo-" + secrets.token_urlsafe(24),
        )
        _, key = ApiKey.issue(org=org, name="demo")
        newest_unread = self._conversations(org, number)
        admin_password = secrets.token_urlsafe(12)
        admin, _ = get_user_model().objects.get_or_create(username="admin", defaults={"email": "admin@localhost"})
        admin.is_staff = admin.is_superuser = True
        admin.set_password(admin_password)
        admin.save()

        Path(env_file).write_text(
            f"export KIRIM_KEY={key}\nexport PHONE_ID={DEMO_PHONE_NUMBER_ID}\n"
            f"export WAMID={newest_unread.wamid}\nexport ADMIN_PASSWORD={admin_password}\n"
        )
        Path(env_file).chmod(0o600)
        self.stdout.write(
            BANNER.format(
                base_url=base_url,
                meta_url=meta_url,
                env_file=env_file,
                password=admin_password,
                wamid=newest_unread.wamid,
            )
        )

    def _conversations(self, org, number):
        start = timezone.now() - timedelta(hours=2)
        message = None
        for index, (wa_id, name, texts) in enumerate(CONVERSATIONS):
            for offset, text in enumerate(texts):
                message = Message.objects.create(
                    org=org,
                    phone_number=number,
                    wamid=new_wamid(),
                    direction=Direction.INBOUND,
                    status=Status.RECEIVED,
                    contact_wa_id=wa_id,
                    contact_name=name,
                    type="text",
                    text=text,
                    payload={"type": "text", "text": {"body": text}},
                    timestamp=start + timedelta(minutes=10 * index + offset),
                )
        return message
