"""A stand-in webhook subscriber: the receiving end of Kirim's events out, for `make run`, tests and
benchmarks. It knows nothing of Kirim beyond the documented headers.

    WEBHOOK_SECRET=whsec_... python -m fakemeta.receiver --port 8082 [--quiet]

prints each event it receives (type, ids, attempt, whether the Kirim signature verifies with
--secret) and answers 200. Tests script its answers (`answers`), hold a request open (`hold`), and
read what it got (`received`); benchmarks make every answer slow (`delay`)."""

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

from fakemeta.server import QuietServer


def kirim_signature_ok(secret, header, body):
    """Verify `X-Kirim-Signature: t=<unix>,v1=<hex>...` as a receiver would: any v1 may match."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    signed = f"{parts.get('t', '')}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(v.removeprefix("v1="), expected) for v in header.split(",")[1:])


class Receiver(QuietServer):
    """Quiet like the stand-in: a delivery Kirim gave up on (a held request released late) is no error."""

    url: str  # where serve_in_thread's receiver listens

    def __init__(self, address, *, secret=None, quiet=False, out=sys.stdout):
        super().__init__(address, Handler)
        self.secret, self.quiet, self.out = secret, quiet, out
        self.received = []  # (monotonic time, headers dict, body bytes), in order of arrival
        self.answers = []  # statuses to answer in turn, then 200; "hold" keeps the request open
        self.delay = 0.0  # seconds every answer takes: a slow receiver, for benchmarks
        self.arrived = threading.Condition()
        self.release = threading.Event()

    def wait_for(self, count, timeout=30.0):
        """Block until `count` requests arrived; returns them (fewer on timeout)."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count and time.monotonic() < deadline:
                self.arrived.wait(timeout=max(0.0, deadline - time.monotonic()))
            return list(self.received)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms wait for a delayed ACK
    server: Receiver

    def do_POST(self):
        server = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = dict(self.headers.items())
        with server.arrived:
            server.received.append((time.monotonic(), headers, body))
            answer = server.answers.pop(0) if server.answers else 200
            server.arrived.notify_all()
        if not server.quiet:
            self._print(headers, body)
        if answer == "hold":  # a receiver that hangs: the sender's timeout or a killed worker ends it
            server.release.wait(timeout=60)
            answer = 200
        time.sleep(server.delay)
        payload = b'{"ok": true}' if answer < 300 else b'{"error": "stand-in receiver said no"}'
        self.send_response(answer)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _print(self, headers, body):
        verified = ""
        if self.server.secret:
            ok = kirim_signature_ok(self.server.secret, headers.get("X-Kirim-Signature", ""), body)
            verified = " signature ok" if ok else " SIGNATURE MISMATCH"
        try:
            shown = json.dumps(json.loads(body), ensure_ascii=False)[:600]
        except ValueError:
            shown = body[:600].decode("utf-8", "replace")
        print(
            f"[receiver] {headers.get('X-Kirim-Event')} {headers.get('X-Kirim-Event-Id')} "
            f"delivery={headers.get('X-Kirim-Delivery-Id')} attempt={headers.get('X-Kirim-Attempt')}{verified}\n"
            f"           {shown}",
            file=self.server.out,
            flush=True,
        )

    def log_message(self, format, *args):
        pass


def serve_in_thread(**kwargs):
    """A receiver on a free loopback port, serving in a daemon thread; `.url` is where to subscribe."""
    server = Receiver(("127.0.0.1", 0), **kwargs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.url = f"http://127.0.0.1:{server.server_port}/kirim-events"
    return server


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--secret", default=os.environ.get("WEBHOOK_SECRET"),
                        help="the subscription's whsec_... secret, to verify signatures (default: $WEBHOOK_SECRET)")  # fmt: skip
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    server = Receiver((args.host, args.port), secret=args.secret, quiet=args.quiet)
    print(f"[receiver] listening on http://{args.host}:{args.port}/", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
