"""`manage.py batch_read`: scope options, dry runs, the receipt window, the summary, exit codes,
stopping and re-running, and two runs at once."""

import fcntl
import io
import json
import os
import pty
import shlex
import signal
import struct
import subprocess
import sys
import termios
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from conftest import postgres_only
from dev.dburl import database_url
from inbox.models import Message, ReadVia, Status
from outbox import record as outbox_record
from outbox.models import Event
from outbox.tests.conftest import make_subscription
from receipts.services.bulk import SKIP_EXPIRED
from testing.meta import graph_messages_url

pytestmark = pytest.mark.django_db(transaction=True)  # worker threads read what the test wrote


def batch_read(*args):
    """Run the command; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("batch_read", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, out.getvalue(), err.getvalue()


def summary(*args):
    code, out, _ = batch_read(*args, "--json")
    return code, json.loads(out)


def receipts_sent(meta):
    return [json.loads(call.request.body)["message_id"] for call in meta.calls]


@pytest.fixture
def inbox(phone_number, second_number, make_message):
    """Three conversations on the first number (one of them 10 days old), one on the second."""
    old = timezone.now() - timedelta(days=10)
    return {
        "siti": [make_message(phone_number, contact="6281") for _ in range(3)],
        "budi": [make_message(phone_number, contact="6282") for _ in range(2)],
        "expired": [make_message(phone_number, contact="6283", timestamp=old + timedelta(minutes=n)) for n in range(2)],
        "other_number": [make_message(second_number, contact="6281")],
    }


@pytest.fixture
def meta_accepts_all(meta, phone_number, second_number):
    for number in (phone_number, second_number):
        meta.post(graph_messages_url(number), json={"success": True})
    return meta


def unread(messages):
    return [m.wamid for m in messages if Message.objects.get(pk=m.pk).status == Status.RECEIVED]


def test_a_scope_is_required(db):
    with pytest.raises(CommandError, match="--all") as error:
        batch_read()
    assert error.value.returncode == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--org", "nope"], "No org"),
        (["--phone-number-id", "123456789"], "Unknown phone number"),
        (["--older-than", "3 days"], "like 30m"),
        (["--before", "last tuesday"], "ISO-8601"),
        (["--all", "--concurrency", "0"], "--concurrency"),
        (["--all", "--concurrency", "65"], "--concurrency"),
        (["--all", "--limit", "0"], "--limit"),
    ],
)
def test_bad_arguments_exit_2_and_say_the_fix(phone_number, args, message):
    with pytest.raises(CommandError, match=message) as error:
        batch_read(*args)
    assert error.value.returncode == 2


def test_bad_arguments_exit_2_from_the_shell():
    result = subprocess.run(
        [sys.executable, "manage.py", "batch_read"],
        check=False,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--all" in result.stderr


def test_all_sends_one_receipt_per_conversation_for_its_newest_message(inbox, meta_accepts_all):
    code, result = summary("--all", "--mark-expired-locally")

    assert code == 0
    assert sorted(receipts_sent(meta_accepts_all)) == sorted(
        [inbox["siti"][-1].wamid, inbox["budi"][-1].wamid, inbox["other_number"][-1].wamid]
    )
    assert result["messages_read"] == 8 and result["conversations"] == 4 and result["meta_calls"] == 3
    assert not Message.objects.filter(status=Status.RECEIVED).exists()
    assert set(Message.objects.values_list("read_via", flat=True)) == {ReadVia.BATCH, ReadVia.EXPIRED_LOCALLY}


def test_a_run_looks_up_subscriptions_once_and_announces_each_conversation(org, inbox, meta_accepts_all, monkeypatch):
    make_subscription(org, events=["message.read"])
    lookups = []
    real = outbox_record.subscriptions_of
    monkeypatch.setattr(outbox_record, "subscriptions_of", lambda org_ids: lookups.append(org_ids) or real(org_ids))

    code, result = summary("--all", "--mark-expired-locally")

    assert code == 0 and result["conversations"] == 4
    assert len(lookups) == 1  # one per run: it was one per conversation
    assert Event.objects.filter(type="message.read").count() == 4


def test_messages_past_the_window_are_skipped_without_a_receipt(inbox, meta_accepts_all):
    code, result = summary("--phone-number-id", inbox["siti"][0].phone_number.phone_number_id)

    assert code == 0
    assert result["skipped"] == {SKIP_EXPIRED: 2}
    assert inbox["expired"][-1].wamid not in receipts_sent(meta_accepts_all)
    assert len(unread(inbox["expired"])) == 2


def test_mark_expired_locally_reads_them_here_and_says_so(inbox, meta_accepts_all):
    code, result = summary("--contact", "6283", "--mark-expired-locally")

    assert code == 0 and result["read_locally"] == 2 and result["meta_calls"] == 0
    assert receipts_sent(meta_accepts_all) == []
    assert set(Message.objects.filter(contact_wa_id="6283").values_list("read_via", flat=True)) == {
        ReadVia.EXPIRED_LOCALLY
    }


@pytest.mark.parametrize(
    "scope, expected",
    [
        (["--org", "toko-kopi"], {"siti", "budi", "other_number"}),
        (["--phone-number-id", "106540352242923"], {"other_number"}),
        (["--phone-number-id", "106540352242922", "--phone-number-id", "106540352242923"], {"siti", "budi", "other_number"}),
        (["--contact", "6281"], {"siti", "other_number"}),
        (["--older-than", "2d", "--mark-expired-locally"], {"expired"}),
    ],
)  # fmt: skip
def test_scope_options(inbox, meta_accepts_all, scope, expected):
    assert batch_read(*scope)[0] == 0
    read = {name for name, messages in inbox.items() if not unread(messages)}
    assert read == expected


def test_before_takes_iso_8601(inbox, meta_accepts_all):
    cutoff = inbox["siti"][1].timestamp.isoformat()

    assert batch_read("--contact", "6281", "--before", cutoff, "--phone-number-id", "106540352242922")[0] == 0

    assert receipts_sent(meta_accepts_all) == [inbox["siti"][0].wamid]
    assert unread(inbox["siti"]) == [m.wamid for m in inbox["siti"][1:]]


def test_dry_run_counts_and_changes_nothing(inbox, meta):
    code, result = summary("--all", "--dry-run")

    assert code == 0
    assert result["dry_run"] and result["conversations"] == 3 and result["meta_calls"] == 3
    assert result["messages_read"] == 6 and result["skipped"] == {SKIP_EXPIRED: 2}
    assert len(meta.calls) == 0
    assert Message.objects.filter(status=Status.RECEIVED).count() == 8


def test_limit_caps_the_conversations_and_a_rerun_does_the_rest(inbox, meta_accepts_all):
    assert summary("--all", "--limit", "2")[1]["conversations"] == 2
    assert summary("--all")[1]["conversations"] == 1
    code, last = summary("--all")
    assert code == 0 and last["conversations"] == 0 and last["meta_calls"] == 0
    assert len(meta_accepts_all.calls) == 3


def test_a_failed_conversation_stays_unread_and_the_exit_is_1(inbox, meta, phone_number, second_number):
    def answer(request):
        if json.loads(request.body)["message_id"] == inbox["budi"][-1].wamid:
            return 400, {}, json.dumps({"error": {"message": "(#131047) Re-engagement message", "code": 131047}})
        return 200, {}, '{"success": true}'

    for number in (phone_number, second_number):
        meta.add_callback("POST", graph_messages_url(number), callback=answer)

    code, out, err = batch_read("--all")

    assert code == 1
    assert len(unread(inbox["budi"])) == 2
    assert not unread(inbox["siti"]) and not unread(inbox["other_number"])
    assert "(#131047) Re-engagement message" in err
    assert "read 4 message(s) in 2 conversation(s)" in out


def test_plain_progress_lines_when_not_a_terminal(inbox, meta_accepts_all, capsys):
    call_command("batch_read", "--all", stdout=io.StringIO())
    assert "batch_read: 3/3 conversations" in capsys.readouterr().err


def test_ctrl_c_stops_after_the_calls_in_flight_and_a_rerun_finishes(inbox, meta, phone_number, second_number):
    def interrupt_once(request):
        if len(meta.calls) == 0:
            os.kill(os.getpid(), signal.SIGINT)
        return 200, {}, '{"success": true}'

    for number in (phone_number, second_number):
        meta.add_callback("POST", graph_messages_url(number), callback=interrupt_once)

    code, _, err = batch_read("--all", "--concurrency", "1")
    assert code == 1 and "stopped" in err
    assert len(meta.calls) == 1  # the call in flight finished; no other started
    assert batch_read("--all")[0] == 0
    assert len(meta.calls) == 3
    assert not unread(inbox["siti"] + inbox["budi"] + inbox["other_number"])


@postgres_only
def test_two_runs_at_once_in_separate_processes_never_send_a_message_two_receipts(
    phone_number, make_message, meta_stand_in
):
    for contact in range(30):
        for _ in range(3):
            make_message(phone_number, contact=f"62{contact:04d}")
    meta_stand_in.state.latency = 0.02
    env = {
        **os.environ,
        "DATABASE_URL": database_url(settings.DATABASES["default"]),
        "META_GRAPH_URL": settings.META_GRAPH_URL,
    }
    command = [sys.executable, "manage.py", "batch_read", "--all", "--concurrency", "4", "--json"]
    runs = [
        subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]

    assert [run.returncode for run in runs] == [0, 0]
    sent = [r["body"]["message_id"] for r in meta_stand_in.state.requests]
    assert len(sent) == len(set(sent)) == 30
    assert sum(json.loads(out)["meta_calls"] for out in outputs) == 30
    assert not Message.objects.filter(status=Status.RECEIVED).exists()


def on_a_terminal(command, env):
    """Run a command with a pseudo-terminal as its stdin, stdout and stderr; (exit code, what it showed)."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        command, cwd=settings.BASE_DIR, env=env, stdin=terminal, stdout=terminal, stderr=terminal
    )
    os.close(terminal)
    shown = []
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the command and everything it started have closed the terminal
            break
        if not chunk:
            break
        shown.append(chunk)
    os.close(controller)
    return process.wait(timeout=60), b"".join(shown).decode().replace("\r\n", "\n")


def test_the_guides_examples_run_against_the_demo_and_logs_never_tear_the_bar(tmp_path):
    from fakemeta.server import make_server

    stand_in = make_server(port=0)
    threading.Thread(target=stand_in.serve_forever, daemon=True).start()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "META_GRAPH_URL": f"http://127.0.0.1:{stand_in.server_port}/v23.0",
        "LOG_LEVEL": "INFO",
    }
    manage = [sys.executable, "manage.py"]
    for step in (["migrate", "--noinput"], ["seed_demo", "--env-file", str(tmp_path / "demo.env")]):
        subprocess.run(manage + step, cwd=settings.BASE_DIR, env=env, check=True, capture_output=True)
    guide = (Path(settings.BASE_DIR) / "docs" / "guides" / "batch-read.md").read_text()
    examples = [line for line in guide.splitlines() if line.startswith(".venv/bin/python manage.py batch_read ")]
    dry_run, real_run = [[sys.executable, *shlex.split(line)[1:]] for line in examples]

    counted = subprocess.run(dry_run, check=False, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True)
    code, shown = on_a_terminal(real_run, env)
    stand_in.shutdown()
    stand_in.server_close()

    assert counted.returncode == 0, counted.stderr
    assert "would read 4 message(s) in 3 conversation(s)" in counted.stdout
    assert code == 0, shown
    assert len(stand_in.state.requests) == 3  # one receipt per demo conversation
    log_lines = [line for line in shown.splitlines() if '"logger": "kirim.receipts"' in line]
    assert len(log_lines) == 4  # one per conversation and the summary
    for line in log_lines:
        # What a terminal shows of the line: the text after its last carriage return, which must be the
        # log line alone (one JSON object), not the bar with the log line glued to its end.
        assert json.loads(line.split("\r")[-1])["level"] == "INFO", shown
    assert "3/3" in shown
