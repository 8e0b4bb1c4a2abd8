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


class Command(BaseCommand):
    help = (
        "Reset the demo org: a number, an API key, an admin user and a few conversations. "
        "Writes what to curl into .kirim-demo.env."
    )

    def add_arguments(self, parser):
        parser.add_argument("--env-file", default=str(Path(settings.BASE_DIR) / ".kirim-demo.env"))

    @transaction.atomic
    def handle(self, *, env_file, **options):
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
        self.stdout.write(f"Demo org {org.slug}: number {DEMO_PHONE_NUMBER_ID}, key and wamid in {env_file}")

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
