"""A local stand-in for Meta's Graph API: answers the Cloud API's shapes for read receipts and sends,
records what it received, and can be told to fail. For `make run`, end-to-end and load tests.

Control endpoints (not Meta's), all JSON:
  GET    /_stand_in/requests   what it received, oldest first (tokens are never recorded)
  DELETE /_stand_in/requests   forget them
  POST   /_stand_in/faults     {"mode": "error"|"malformed"|"close"|"timeout", "status": 400,
                                "error": {Meta's error object}, "times": N (default: until cleared)}
  DELETE /_stand_in/faults     answer normally again
  POST   /_stand_in/inbound    {"phone_number_id", "from", "name", "text"}: a contact writes in; posted
                               to Kirim as a signed webhook (needs --webhook-url and the app secret)
  POST   /_stand_in/latency    {"median_ms": 200, "p99_ms": 800}: how long each Graph call takes from now on
  POST   /_stand_in/status_delay {"ms": [-20, 0, 50]}: when each send's `sent` webhook is posted, relative
                               to its answer, the values taken in turn, send by send (see below)
  POST   /_stand_in/echo       {"phone_number_id", "to", "text"}: staff send from the WhatsApp Business app
                               on the same number; posted to Kirim as an `smb_message_echoes` webhook
  POST   /_stand_in/webhook    {"field", "value", "waba_id", "phone_number_id"?}: any other field's change
                               (history, smb_app_state_sync, message_template_status_update, ...), posted

With --webhook-url, every accepted send is followed by signed `sent` and `delivered` status webhooks,
as Meta would post them: `sent` 50 ms after the answer (--status-delay-ms), `delivered` 50 ms after
`sent`. Meta's webhooks and its answer travel apart, so either may reach Kirim first: a delay of 0
posts `sent` as the answer leaves, a negative one posts it (and waits for Kirim to take it) that many
ms before answering. A template send's answer carries Meta's `message_status` (`accepted`).

Also Meta's GET /{phone_number_id} and GET /{waba_id}/phone_numbers (the numbers in NUMBERS), GET
/{waba_id}/message_templates (TEMPLATES, paged by `limit` and `after` cursors as Meta pages), POST
/{phone_number_id}/media (answers a new media id), GET /{media_id} (its description, with a `url` on
the stand-in) and GET /_stand_in/media/{media_id} (its bytes, with the bearer token only).

Meta's Block Users API, POST, DELETE and GET /{phone_number_id}/block_users: only users who wrote in
(through /_stand_in/inbound) can be blocked; the others fail one by one, in Meta's 400 (code 139100).
A send by `recipient` (a business-scoped user id) is answered with that `user_id`, as Meta answers it.
"""

import argparse
import base64
import contextlib
import itertools
import json
import math
import os
import random
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fakemeta import payloads

DEFAULT_ERROR = {
    "message": "(#131000) Something went wrong",
    "type": "OAuthException",
    "code": 131000,
    "error_data": {"messaging_product": "whatsapp", "details": "Something went wrong"},
    "fbtrace_id": "AStandInTraceId",
}


# Templates every WABA has on the stand-in: more than one page at Meta's default limit of 25.
TEMPLATES = [
    {"name": f"template_{n}", "language": "en_US", "status": "APPROVED", "category": "UTILITY", "id": str(9000 + n),
     "parameter_format": "POSITIONAL",
     "components": [{"type": "BODY", "text": f"Template {n}: {{{{1}}}}"}]}
    for n in range(1, 31)
]  # fmt: skip
# The business numbers the stand-in's Meta has, by id: the demo seed's two, and a third in Demo Coffee's
# WABA that the seed leaves unconnected, to connect in the admin under `make run`. Any bearer token
# acts for them (the stand-in has no accounts); other ids are not numbers here.
NUMBERS = {
    "106540352242922": ("102290129340398", "+62 811 0000 0001", "Demo Coffee"),
    "106540352242933": ("102290129340399", "+62 811 0000 0002", "Demo Books"),
    "106540352242944": ("102290129340398", "+62 811 0000 0003", "Demo Coffee"),
}  # id: (WABA id, display_phone_number, verified_name)
MEDIA_BYTES = b"\xff\xd8\xff\xe0stand-in jpeg"
P99_STANDARD_SCORE = 2.3263  # the normal distribution's 99th percentile, in standard deviations


def number_fields(phone_number_id):
    """A number of NUMBERS as Meta describes it."""
    _, display_phone_number, verified_name = NUMBERS[phone_number_id]
    return {"id": phone_number_id, "display_phone_number": display_phone_number, "verified_name": verified_name}


def new_wamid():
    return "wamid." + base64.b64encode(b"\x15\x02\x00\x11\x18\x12" + secrets.token_bytes(36)).decode()


class StandIn:
    """The state every handler thread shares: recorded requests, the fault plan, added latency."""

    def __init__(
        self,
        latency_ms=0,
        webhook_url=None,
        app_secret=None,
        fail_rate=0.0,
        latency_p99_ms=None,
        status_delays_ms=(50,),
    ):
        self.lock = threading.Lock()
        self.latency = latency_ms / 1000  # the median
        self.latency_p99 = (latency_p99_ms or 0) / 1000
        self.fail_rate = fail_rate
        self.status_delays = itertools.cycle(status_delays_ms)
        self.webhook_url = webhook_url
        self.app_secret = app_secret
        self.requests = []
        self.fault = None
        self.wrote_in = set()  # users who wrote to a number: the only ones Meta lets it block
        self.blocked = {}  # phone_number_id: {wa_id}
        self.webhooks_posted = []  # HTTP status of each webhook Kirim answered
        self.media = {}  # media id: (mime type, bytes); any other id is a JPEG of MEDIA_BYTES

    def post_webhook(self, payload):
        """POST a signed webhook to Kirim, as Meta does; returns Kirim's HTTP status."""
        raw = payloads.encode(payload)
        request = urllib.request.Request(
            self.webhook_url,
            data=raw,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": payloads.sign(raw, self.app_secret)},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        with self.lock:
            self.webhooks_posted.append(status)
        return status

    def report_delivery(self, phone_number_id, wamid, recipient, callback_data, category, *, sent_after, sent_posted):
        """`sent` in `sent_after` seconds (`sent_posted` is set once Kirim has answered it), then
        `delivered` 50 ms later, echoing the send's biz_opaque_callback_data as Meta does, with the
        send's pricing `category` and the recipient's contact."""
        for value, wait in (("sent", sent_after), ("delivered", 0.05)):
            time.sleep(wait)
            status = payloads.status(wamid, value, recipient, biz_opaque_callback_data=callback_data, category=category)
            self.post_webhook(payloads.webhook(phone_number_id, statuses=[status]))
            if value == "sent":
                sent_posted.set()

    def next_status_delay(self):
        """Seconds from a send's answer to its `sent` webhook: negative is before it."""
        with self.lock:
            return next(self.status_delays) / 1000

    def draw_latency(self):
        """Seconds for one Graph call. Meta's latency has a long right tail: lognormal around the median,
        spread so that 1 call in 100 takes `latency_p99` or more; without a p99, always the median."""
        if self.latency <= 0 or self.latency_p99 <= self.latency:
            return self.latency
        sigma = math.log(self.latency_p99 / self.latency) / P99_STANDARD_SCORE
        return random.lognormvariate(math.log(self.latency), sigma)

    def record(self, entry):
        with self.lock:
            self.requests.append(entry)

    def take_fault(self):
        with self.lock:
            if self.fail_rate and random.random() < self.fail_rate:
                return {"mode": "error", "status": 500}
            fault = self.fault
            if fault and fault.get("times") is not None:
                fault["times"] -= 1
                if fault["times"] <= 0:
                    self.fault = None
            return fault


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "KirimMetaStandIn/1"
    # Headers and body leave in one segment: otherwise Nagle's algorithm meets the client's delayed
    # ACK and every keep-alive answer waits ~40 ms, which would be measured as Kirim's overhead.
    disable_nagle_algorithm = True
    wbufsize = -1
    server: "StandInServer"

    @property
    def state(self):
        return self.server.state

    def parse_request(self):
        self.entry = None  # the Graph call this request records; never carried over on a kept-alive connection
        return super().parse_request()

    def log_message(self, format, *args):  # quiet: the recorded requests are the log
        pass

    def _body(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            return json.loads(raw or b"null")
        except ValueError:
            return raw.decode(errors="replace")

    def _answer(self, status, payload):
        if self.entry is not None:
            self.entry["answered"] = status  # what Meta said, so a load test can count real receipts
        self._raw(status, json.dumps(payload).encode(), "application/json")

    def do_GET(self):
        if self.path == "/_stand_in/requests":
            with self.state.lock:
                return self._answer(200, {"requests": list(self.state.requests)})
        path, _, query = self.path.partition("?")
        parts = path.strip("/").split("/")
        if parts[-1] == "message_templates":
            return self._templates(parts, urllib.parse.parse_qs(query))
        if len(parts) == 2 and parts[-1] in NUMBERS:
            return self._answer(200, number_fields(parts[-1]))
        if len(parts) == 3 and parts[-1] == "phone_numbers":  # a WABA's numbers, all on one page
            numbers = [number_fields(id) for id, (waba_id, *_) in NUMBERS.items() if waba_id == parts[1]]
            return self._answer(200, {"data": numbers, "paging": {"cursors": {"before": "QVFI", "after": "QVFI"}}})
        if parts[:2] == ["_stand_in", "media"] and self.headers.get("Authorization", "").startswith("Bearer "):
            mime_type, content = self._media(parts[-1])
            return self._raw(200, content, mime_type)
        if len(parts) == 3 and parts[-1] == "block_users":
            with self.state.lock:
                blocked = sorted(self.state.blocked.get(parts[-2], ()))
            users = [{"messaging_product": "whatsapp", "wa_id": wa_id} for wa_id in blocked]
            return self._answer(200, {"data": users, "paging": {"cursors": {"before": "QVFI", "after": "QVFI"}}})
        if len(parts) == 2 and parts[-1].isdigit():
            host = f"http://{self.headers.get('Host')}"
            mime_type, content = self._media(parts[-1])
            return self._answer(200, {"messaging_product": "whatsapp", "url": f"{host}/_stand_in/media/{parts[-1]}",
                                      "mime_type": mime_type, "sha256": "0" * 64, "file_size": len(content),
                                      "id": parts[-1]})  # fmt: skip
        self._answer(404, {"error": {"message": "Unknown path", "code": 100}})

    def _media(self, media_id):
        with self.state.lock:
            return self.state.media.get(media_id, ("image/jpeg", MEDIA_BYTES))

    def _templates(self, parts, query):
        """Meta's paging: `limit` per page, opaque `after` cursors, `next` only when there is more."""
        limit = int(query.get("limit", ["25"])[0])
        start = int(base64.b64decode(query["after"][0])) if "after" in query else 0
        page = TEMPLATES[start : start + limit]
        cursor = lambda n: base64.b64encode(str(n).encode()).decode()
        paging: dict[str, object] = {"cursors": {"before": cursor(start), "after": cursor(start + len(page))}}
        if start + limit < len(TEMPLATES):
            paging["next"] = f"https://graph.facebook.com/{parts[0]}/{parts[1]}/message_templates?after=..."
        answer = {"data": page, "paging": paging}
        if "summary" in query:  # the counts asked for, as Meta adds them
            counts = {"total_count": len(TEMPLATES), "message_template_count": len(TEMPLATES),
                      "message_template_limit": 250, "are_translations_complete": True}  # fmt: skip
            answer["summary"] = {name: counts.get(name) for name in query["summary"][0].split(",")}
        self._answer(200, answer)

    def _raw(self, status, raw, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_DELETE(self):
        parts = self.path.strip("/").split("/")
        if len(parts) == 3 and parts[-1] == "block_users":
            return self._block(parts[-2], self._body(), block=False)
        with self.state.lock:
            if self.path == "/_stand_in/requests":
                self.state.requests.clear()
            elif self.path == "/_stand_in/faults":
                self.state.fault = None
            else:
                return self._answer(404, {"error": {"message": "Unknown path", "code": 100}})
        self._answer(200, {"success": True})

    def do_POST(self):
        body = self._body()
        if self.path == "/_stand_in/faults":
            with self.state.lock:
                self.state.fault = body
            return self._answer(200, {"success": True})
        if self.path == "/_stand_in/inbound":
            return self._inbound(body if isinstance(body, dict) else {})
        if self.path == "/_stand_in/echo":
            return self._echo(body if isinstance(body, dict) else {})
        if self.path == "/_stand_in/webhook":
            return self._field_change(body if isinstance(body, dict) else {})
        if self.path == "/_stand_in/latency":
            spec = body if isinstance(body, dict) else {}
            with self.state.lock:
                self.state.latency = float(spec.get("median_ms") or 0) / 1000
                self.state.latency_p99 = float(spec.get("p99_ms") or 0) / 1000
            return self._answer(200, {"success": True})
        if self.path == "/_stand_in/status_delay":
            delays = body.get("ms") if isinstance(body, dict) else None
            if not isinstance(delays, list) or not delays or not all(isinstance(ms, int | float) for ms in delays):
                return self._answer(400, {"error": {"message": "Give `ms`, a list of numbers", "code": 100}})
            with self.state.lock:
                self.state.status_delays = itertools.cycle(delays)
            return self._answer(200, {"success": True})
        parts = self.path.strip("/").split("/")
        if len(parts) == 3 and parts[-1] == "block_users":
            return self._block(parts[-2], body, block=True)
        if len(parts) >= 2 and parts[-1] == "media":
            return self._answer(200, {"id": str(random.randint(10**15, 10**16 - 1))})
        if len(parts) < 2 or parts[-1] != "messages":
            return self._answer(404, {"error": {"message": "Unknown path", "code": 100}})
        self.entry = {
            "phone_number_id": parts[-2],
            "body": body,
            "has_bearer_token": self.headers.get("Authorization", "").startswith("Bearer "),
            "received_at": time.time(),
            "answered": None,
        }
        self.state.record(self.entry)
        latency = self.state.draw_latency()
        if latency:
            time.sleep(latency)
        fault = self.state.take_fault()
        if fault:
            return self._fail(fault)
        if isinstance(body, dict) and body.get("status") == "read":
            return self._answer(200, {"success": True})
        if isinstance(body, dict) and body.get("type"):
            to, wamid = str(body.get("to", "")), new_wamid()
            if self.state.webhook_url:  # started first: Meta delivers even when its answer is lost on the way
                delay, sent_posted = self.state.next_status_delay(), threading.Event()
                category = "utility" if body["type"] == "template" else "service"  # TEMPLATES are utility ones
                threading.Thread(
                    target=self.state.report_delivery,
                    args=(parts[-2], wamid, to, body.get("biz_opaque_callback_data"), category),
                    kwargs={"sent_after": max(delay, 0), "sent_posted": sent_posted},
                    daemon=True,
                ).start()
                if delay < 0:  # Kirim has taken the `sent` webhook before the answer leaves
                    sent_posted.wait(timeout=10)
                    time.sleep(-delay)
            sent = {"id": wamid}
            if body["type"] == "template":  # Meta's template pacing status, on template sends only
                sent["message_status"] = "accepted"
            contact = {"input": to, "wa_id": to}
            if not to and body.get("recipient"):  # a business-scoped user id: Meta answers it as `user_id`
                contact = {"input": body["recipient"], "user_id": body["recipient"]}
            return self._answer(200, {"messaging_product": "whatsapp", "contacts": [contact], "messages": [sent]})
        self._answer(400, {"error": {**DEFAULT_ERROR, "code": 100, "message": "Invalid parameter"}})

    def _inbound(self, spec):
        if not (self.state.webhook_url and self.state.app_secret):
            return self._answer(409, {"error": {"message": "start the stand-in with --webhook-url and an app secret"}})
        sender, wamid = str(spec.get("from", "6281200000001")), new_wamid()
        with self.state.lock:
            self.state.wrote_in.add(sender)
        payload = payloads.webhook(
            str(spec.get("phone_number_id", "")),
            contacts=[payloads.contact(sender, str(spec.get("name", "")))],
            messages=[payloads.text_message(wamid, sender, str(spec.get("text", "Halo!")))],
        )
        self._answer(200, {"wamid": wamid, "kirim_status": self.state.post_webhook(payload)})

    def _echo(self, spec):
        """Staff send a text from the WhatsApp Business app on the number: Meta's echo of it."""
        if not (self.state.webhook_url and self.state.app_secret):
            return self._answer(409, {"error": {"message": "start the stand-in with --webhook-url and an app secret"}})
        phone_number_id, wamid = str(spec.get("phone_number_id", "")), new_wamid()
        _, display_phone_number, _ = NUMBERS.get(phone_number_id, ("", "", ""))
        business = "".join(ch for ch in display_phone_number if ch.isdigit())
        echo = payloads.echo(wamid, str(spec.get("to", "6281200000001")), str(spec.get("text", "Halo!")),
                             business_number=business)  # fmt: skip
        change = payloads.field_change("smb_message_echoes", payloads.echoes(echo), waba_id=NUMBERS.get(
            phone_number_id, ("0",))[0], phone_number_id=phone_number_id, display_phone_number=business)  # fmt: skip
        self._answer(200, {"wamid": wamid, "kirim_status": self.state.post_webhook(change)})

    def _field_change(self, spec):
        if not (self.state.webhook_url and self.state.app_secret):
            return self._answer(409, {"error": {"message": "start the stand-in with --webhook-url and an app secret"}})
        if not isinstance(spec.get("field"), str) or not isinstance(spec.get("value"), dict):
            return self._answer(400, {"error": {"message": "Give `field` and its `value`", "code": 100}})
        change = payloads.field_change(spec["field"], spec["value"], waba_id=str(spec.get("waba_id", "0")),
                                       phone_number_id=spec.get("phone_number_id"))  # fmt: skip
        self._answer(200, {"kirim_status": self.state.post_webhook(change)})

    def _block(self, phone_number_id, body, *, block):
        """Meta's Block Users API: each user alone; a user who never wrote in cannot be blocked, and any
        failure makes the answer Meta's 400 (code 139100) naming each user."""
        users = body.get("block_users") if isinstance(body, dict) else None
        if not isinstance(users, list) or not users or body.get("messaging_product") != "whatsapp":
            return self._answer(400, {"error": {**DEFAULT_ERROR, "code": 100, "message": "(#100) Invalid parameter"}})
        done, failed = [], []
        with self.state.lock:
            blocked = self.state.blocked.setdefault(phone_number_id, set())
            for user in users:
                wanted = str((user or {}).get("user") or (user or {}).get("user_id") or "")
                wa_id = "".join(ch for ch in wanted if ch.isdigit()) if (user or {}).get("user") else wanted
                if block and wa_id not in self.state.wrote_in:
                    failed.append({"input": wanted, "errors": [{
                        "message": "Failed to block/unblock this user", "code": 139100,
                        "error_data": {"details": "User can only be blocked within 24 hours of their last message"},
                    }]})  # fmt: skip
                    continue
                (blocked.add if block else blocked.discard)(wa_id)
                done.append({"input": wanted, "wa_id": wa_id})
        results = {"added_users" if block else "removed_users": done}
        if not failed:
            return self._answer(200, {"messaging_product": "whatsapp", "block_users": results})
        error = {"message": "(#139100) Failed to block/unblock users", "type": "OAuthException", "code": 139100,
                 "error_data": {"details": "Failed to block some users, see the block_users response list for details"},
                 "fbtrace_id": "AStandInTraceId"}  # fmt: skip
        self._answer(400, {"messaging_product": "whatsapp", "block_users": {**results, "failed_users": failed},
                           "error": error})  # fmt: skip

    def _fail(self, fault):
        mode = fault.get("mode", "error")
        if mode == "timeout":
            time.sleep(fault.get("seconds", 30))
            return self._answer(200, {"success": True})
        if mode == "close":
            self.close_connection = True
            self.connection.close()
            return
        if mode == "malformed":
            return self._raw(fault.get("status", 502), b"<html>502 Bad Gateway</html>", "text/html")
        self._answer(fault.get("status", 400), {"error": fault.get("error", DEFAULT_ERROR)})


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connecting at once are queued, not refused and retried a second later

    def handle_error(self, request, client_address):
        """A client that hung up (Kirim timing out on a slow fault) is expected here, not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class StandInServer(QuietServer):
    def __init__(self, address, state):
        super().__init__(address, Handler)
        self.state = state


def make_server(host="127.0.0.1", port=8081, **options):
    """The stand-in listening at (host, port); `options` are StandIn's."""
    return StandInServer((host, port), StandIn(**options))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--latency-ms", type=int, default=0, help="median time of a Graph API call")
    parser.add_argument(
        "--latency-p99-ms", type=int, help="its 99th percentile: a lognormal tail, as Meta's (default: no spread)"
    )
    parser.add_argument("--webhook-url", help="Kirim's /webhooks/whatsapp, to post inbound messages and statuses to")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of Graph calls answered 500 (131000)")
    parser.add_argument(
        "--status-delay-ms",
        type=lambda text: [float(ms) for ms in text.split(",")],
        default=[50],
        help="ms from a send's answer to its `sent` webhook, negative for before it; a comma list is taken in turn",
    )
    args = parser.parse_args(argv)
    # The app secret signs webhooks; from the environment, never the command line.
    try:
        server = make_server(
            args.host,
            args.port,
            latency_ms=args.latency_ms,
            webhook_url=args.webhook_url,
            app_secret=os.environ.get("META_APP_SECRET"),
            fail_rate=args.fail_rate,
            latency_p99_ms=args.latency_p99_ms,
            status_delays_ms=args.status_delay_ms,
        )
    except OSError as error:
        sys.exit(f"Meta stand-in: cannot listen on {args.host}:{args.port}: {error.strerror}")
    print(f"Meta stand-in listening on http://{args.host}:{server.server_port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
