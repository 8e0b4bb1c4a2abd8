import secrets
import shlex
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from fakemeta import payloads
from fakemeta.server import NUMBERS, new_wamid
from inbox.models import ApiKey, Direction, Message, Org, PhoneNumber, Role, Status
from inbox.services.inbound_rows import conversations_touch
from inbox.services.ingest import webhook_receive
from inbox.services.replies import templates_store
from orgs.members import member_add
from outbox.models import Receiver
from outbox.services import subscription_create

# The demo's numbers are the Meta stand-in's (fakemeta/server.py), so that sends, receipts and
# templates work against it. They are written here directly: the seed runs before the stand-in starts,
# so Meta cannot be asked to confirm them as add_phone_number and the admin do (inbox/services/numbers.py).
DEMO_SLUG = "demo"
DEMO_PHONE_NUMBER_ID = "106540352242922"
DEMO_WABA_ID, DEMO_DISPLAY_NUMBER = NUMBERS[DEMO_PHONE_NUMBER_ID][:2]
SPARE_PHONE_NUMBER_ID = "106540352242944"  # of the stand-in's, not seeded: to connect in the admin
CONVERSATIONS = [
    ("6281234567801", "Siti Rahma", ["Halo, is the shop open today?", "And do you deliver to Bandung?"]),
    ("6281234567802", "Budi Santoso", ["My order #4411 has not arrived"]),
    ("6281234567803", "Ayu Lestari", ["Thank you! The coffee was great"]),
]
REPLY = ("6281234567803", "Terima kasih, Ayu! See you again soon.")
# A second org, so that the demo agent can see what they do not see.
OTHER_SLUG = "demo-books"
OTHER_PHONE_NUMBER_ID = "106540352242933"
OTHER_WABA_ID, OTHER_DISPLAY_NUMBER = NUMBERS[OTHER_PHONE_NUMBER_ID][:2]
OTHER_CONVERSATIONS = [("6281234567811", "Rina Wijaya", ["Do you have the new Pramoedya edition?"])]
AGENT_USERNAME = "agent"
DISABLED_TEMPLATE = "follow_up"  # Meta disables it in the demo: the reply box no longer offers it

BANNER = """
Demo org "Demo Coffee" is ready; its API key, number and an unread wamid are in {env_file}.
A second org, "Demo Books", has its own number and a conversation.

  Admin inbox:  {base_url}/admin/
    user admin, password {password}   (operator: every org)
    user agent, password {agent_password}   (agent of Demo Coffee: its inbox only)
  API docs:     {base_url}/v1/docs   (Meta's own API at /v23.0/...: {base_url}/v1/graph/docs)
  Health:       curl {base_url}/v1/health

Mark the newest demo message read (in another terminal):

  source {env_file}
  curl -X POST {base_url}/v1/$PHONE_ID/messages \\
    -H "Authorization: Bearer $KIRIM_KEY" -H "Content-Type: application/json" \\
    -d '{{"messaging_product": "whatsapp", "status": "read", "message_id": "'$WAMID'"}}'

The same in Meta's own shapes, for clients written for Meta (answers {{"success": true}}):

  curl -X POST {base_url}/v23.0/$PHONE_ID/messages -H "Authorization: Bearer $KIRIM_KEY" \\
    -H "Content-Type: application/json" -d '{{"messaging_product": "whatsapp", "status": "read", "message_id": "'$WAMID'"}}'
  Templates from Meta, with Meta's paging:  curl "{base_url}/v23.0/{waba_id}/message_templates?access_token=$KIRIM_KEY"

A contact writes in (the stand-in posts a signed webhook to Kirim):

  curl -X POST {meta_url}/_stand_in/inbound -d '{{"phone_number_id": "'$PHONE_ID'", "from": "6281234567809", "name": "Dewi", "text": "Halo!"}}'

What the Meta stand-in received:  curl {meta_url}/_stand_in/requests

Meta in 2026: Budi's conversation has a reply staff sent from the WhatsApp Business app (an echo), Ayu's
reply shows its price, and Meta disabled the template follow_up (the reply box no longer offers it) and
flagged the number (Phone numbers); Admin, Price report sums the prices. Staff send from the phone:

  curl -X POST {meta_url}/_stand_in/echo -d '{{"phone_number_id": "'$PHONE_ID'", "to": "6281234567801", "text": "On my way"}}'

Connect another number (Admin, Phone numbers, Add): the stand-in confirms phone number id {spare_id}
of WABA {waba_id} to any access token; Kirim connects no number Meta does not confirm.

Under make run, Demo Coffee's events (message.received, message.status, message.read) go to a local
receiver that prints each one, delivered by the db_worker process beside the server.
"""


class Command(BaseCommand):
    help = (
        "Reset the demo orgs: Demo Coffee with a number, an API key and a few conversations brought in "
        "through the same webhook path Meta uses, a second org with its own, an operator (superuser) and "
        "an agent of Demo Coffee. Writes what to curl and the passwords into .kirim-demo.env."
    )

    def add_arguments(self, parser):
        parser.add_argument("--env-file", default=str(Path(settings.BASE_DIR) / ".kirim-demo.env"))
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="where Kirim will listen")
        parser.add_argument("--meta-url", default="http://127.0.0.1:8081", help="where the Meta stand-in listens")
        parser.add_argument(
            "--receiver-url", help="subscribe Demo Coffee's events to this URL (the stand-in receiver under make run)"
        )

    @transaction.atomic
    def handle(self, *, env_file, base_url, meta_url, receiver_url=None, **options):
        Org.objects.filter(slug__in=(DEMO_SLUG, OTHER_SLUG)).delete()
        org = Org.objects.create(name="Demo Coffee", slug=DEMO_SLUG)
        number = self._number(org, DEMO_PHONE_NUMBER_ID, DEMO_DISPLAY_NUMBER, DEMO_WABA_ID)
        _, key = ApiKey.issue(org=org, name="demo")
        templates_store(number, payloads.DEMO_TEMPLATES)  # as if synced: the reply box has templates to offer
        newest_unread = self._conversations(number)
        other = self._number(Org.objects.create(name="Demo Books", slug=OTHER_SLUG), OTHER_PHONE_NUMBER_ID,
                             OTHER_DISPLAY_NUMBER, OTHER_WABA_ID)  # fmt: skip
        self._inbound(other, OTHER_CONVERSATIONS, start=timezone.now() - timedelta(minutes=30))
        agent_password = secrets.token_urlsafe(12)
        member_add(org=org, username=AGENT_USERNAME, role=Role.AGENT, password=agent_password)
        admin_password = secrets.token_urlsafe(12)
        admin, _ = get_user_model().objects.get_or_create(username="admin", defaults={"email": "admin@localhost"})
        admin.is_staff = admin.is_superuser = True
        admin.set_password(admin_password)
        admin.save()

        webhook_secret = ""
        if receiver_url:  # subscribed last: the seed's own conversations are not announced
            webhook_secret = subscription_create(org=org, url=receiver_url, receiver=Receiver.KIRIM,
                                                 description="make run's stand-in receiver").secret  # fmt: skip
        Path(env_file).write_text(
            f"export KIRIM_KEY={key}\nexport PHONE_ID={DEMO_PHONE_NUMBER_ID}\n"
            f"export WAMID={newest_unread}\nexport ADMIN_PASSWORD={admin_password}\n"
            f"export AGENT_PASSWORD={agent_password}\nexport WEBHOOK_SECRET={webhook_secret}\n"
        )
        Path(env_file).chmod(0o600)
        self.stdout.write(
            BANNER.format(
                base_url=base_url, meta_url=meta_url, env_file=shlex.quote(env_file), password=admin_password,
                agent_password=agent_password, waba_id=DEMO_WABA_ID, spare_id=SPARE_PHONE_NUMBER_ID,
            )
        )  # fmt: skip

    def _number(self, org, phone_number_id, display_phone_number, waba_id):
        return PhoneNumber.objects.create(
            org=org,
            phone_number_id=phone_number_id,
            display_phone_number=display_phone_number,
            waba_id=waba_id,
            access_token="demo-" + secrets.token_urlsafe(24),
        )

    def _conversations(self, number):
        """Inbound messages and delivery statuses arrive as Meta's webhooks would bring them."""
        wamid = self._inbound(number, CONVERSATIONS, start=timezone.now() - timedelta(hours=2))
        to, text = REPLY
        reply = Message.objects.create(
            org_id=number.org_id,
            phone_number=number,
            wamid=new_wamid(),
            direction=Direction.OUTBOUND,
            status=Status.ACCEPTED,
            contact_wa_id=to,
            type="text",
            text=text,
            payload={"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": text}},
        )
        conversations_touch([reply])
        self._webhook(number, statuses=[payloads.status(reply.wamid, s, to) for s in ("sent", "delivered", "read")])
        self._from_the_business_app(number)
        return wamid

    def _from_the_business_app(self, number):
        """What Meta sends beyond messages, as it would: staff answering Budi from the WhatsApp Business
        app on the same number (an echo), and Meta disabling a template and flagging the number."""
        to = CONVERSATIONS[1][0]
        echo = payloads.echo(new_wamid(), to, "We are checking order #4411 with the courier.",
                             business_number=number.display_phone_number)  # fmt: skip
        self._field(number, "smb_message_echoes", payloads.echoes(echo, name=CONVERSATIONS[1][1]),
                    phone_number_id=number.phone_number_id)  # fmt: skip
        follow_up = next(t for t in payloads.DEMO_TEMPLATES if t["name"] == DISABLED_TEMPLATE)
        self._field(number, "message_template_status_update",
                    payloads.template_status(follow_up, "DISABLED", reason="INCORRECT_CATEGORY"))  # fmt: skip
        self._field(number, "phone_number_quality_update",
                    payloads.number_quality(number.display_phone_number, "FLAGGED", "TIER_1K"))  # fmt: skip

    def _field(self, number, field, value, **where):
        change = payloads.field_change(field, value, waba_id=number.waba_id,
                                       display_phone_number=number.display_phone_number, **where)  # fmt: skip
        webhook_receive(payloads.encode(change))

    def _inbound(self, number, conversations, start):
        """Each contact's texts, ten minutes apart; returns the newest wamid."""
        wamid = None
        for index, (wa_id, name, texts) in enumerate(conversations):
            for offset, text in enumerate(texts):
                wamid = new_wamid()
                sent_at = (start + timedelta(minutes=10 * index + offset)).timestamp()
                self._webhook(
                    number,
                    contacts=[payloads.contact(wa_id, name)],
                    messages=[payloads.text_message(wamid, wa_id, text, timestamp=sent_at)],
                )
        return wamid

    def _webhook(self, number, **content):
        webhook_receive(
            payloads.encode(
                payloads.webhook(number.phone_number_id, display_phone_number=number.display_phone_number, **content)
            )
        )
