"""`make run` as a newcomer uses it: the real Makefile in a subprocess, its printed commands pasted into
bash, Ctrl-C, and a second start. In CI on the Makefile's own ports (8000, 8081 and the receiver on 8082); elsewhere on free
ports, so a developer's running demo and other checkouts are left alone. Its database is a SQLite file
of its own."""

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

from conftest import free_port

REPO = Path(settings.BASE_DIR)
IN_CI = bool(os.environ.get("CI"))
START_SECONDS = 120  # install is done, so: migrate, seed, start two servers; CI's machine is shared


def require(tool):
    if shutil.which(tool) is None:
        reason = f"`make run` tests need {tool} on PATH"
        pytest.fail(reason) if IN_CI else pytest.skip(reason)


def port_is_free(port):
    """Nothing answers on it, and a server can listen on it the way ours do (SO_REUSEADDR)."""
    with socket.socket() as client:
        if client.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            server.bind(("127.0.0.1", port))
            server.listen()
        except OSError:
            return False
    return True


def process_table():
    """{pid: (parent pid, start time, state)} from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (command) "
        table[int(entry.name)] = (int(fields[1]), fields[19], fields[0])
    return table


def descendants(root):
    """Every live process under root, with its start time (so a reused pid is not mistaken for it)."""
    table = process_table()
    found, frontier = {root: table[root][1]}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, started, _) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = started
                frontier.append(pid)
    return found


def still_alive(processes):
    table = process_table()
    alive = {pid for pid, (_, started, state) in table.items() if state != "Z"}  # a zombie is gone, unreaped
    return [pid for pid, started in processes.items() if pid in alive and table[pid][1] == started]


class MakeRun:
    """One `make run`, in a session of its own as a terminal would run it; its output is collected."""

    def __init__(self, port, meta_port, receiver_port, database):
        self.port, self.meta_port = port, meta_port
        environment = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
        environment.update(DATABASE_URL=f"sqlite:///{database}", PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            ["make", "run", f"PORT={port}", f"META_PORT={meta_port}", f"RECEIVER_PORT={receiver_port}"],
            cwd=REPO,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines = []
        self.started = {}  # every process under make once it serves: {pid: start time}
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True)
        self.reader.start()

    @property
    def output(self):
        return "".join(self.lines)

    def health(self):
        return requests.get(f"http://127.0.0.1:{self.port}/v1/health", timeout=5)

    def wait_until_serving(self):
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"make run exited {self.process.returncode}:\n{self.output}"
            try:
                if self.health().status_code == 200 and port_is_listening(self.meta_port):
                    self.started = descendants(self.process.pid)
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.25)
        pytest.fail(f"make run did not serve /v1/health within {START_SECONDS}s:\n{self.output}")

    def ctrl_c(self):
        """What Ctrl-C does: SIGINT to the terminal's foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)
        self.process.wait(timeout=60)
        self.reader.join(timeout=10)

    def kill_leftovers(self):
        """Teardown: nothing it started may outlive the test, whatever make run did."""
        if self.process.poll() is None:
            self.started.update(descendants(self.process.pid))
        for pid in still_alive(self.started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def port_is_listening(port):
    with socket.socket() as client:
        return client.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def ports():
    require("make")
    chosen = (8000, 8081, 8082) if IN_CI else (free_port(), free_port(), free_port())
    busy = [port for port in chosen if not port_is_free(port)]
    if busy:
        pytest.fail(f"ports {busy} are in use before `make run` starts") if IN_CI else pytest.skip(f"ports {busy} busy")
    return chosen


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory):
    return tmp_path_factory.mktemp("make-run") / "demo.sqlite3"


@pytest.fixture
def make_run(ports, demo_database):
    started = []

    def start():
        run = MakeRun(*ports, demo_database)
        started.append(run)
        run.wait_until_serving()
        return run

    yield start
    for run in started:
        run.kill_leftovers()


def test_ctrl_c_stops_every_process_it_started_and_a_second_run_serves_at_once(make_run, ports):
    first = make_run()
    processes = first.started
    names = " ".join(Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ") for pid in processes)
    assert "fakemeta" in names and "runserver" in names and "db_worker" in names and "fakemeta.receiver" in names

    first.ctrl_c()

    assert still_alive(processes) == [], first.output
    assert [port for port in ports if not port_is_free(port)] == []
    assert "make: ***" not in first.output  # Ctrl-C is how a demo ends: make reports no failed step

    second = make_run()
    assert second.health().status_code == 200
    second.ctrl_c()


def printed_commands(output):
    """Every `source ...` or `curl ...` make run printed, with its `\\`-continued lines, in order."""
    commands, continuing = [], False
    for line in output.splitlines():
        if continuing:
            commands[-1] += "\n" + line
        elif match := re.search(r"(?:^|\s)((?:source|curl) .*)$", line):
            commands.append(match.group(1))
        else:
            continue
        continuing = line.endswith("\\")
    return commands


def test_the_commands_it_prints_work_pasted_into_bash(make_run, tmp_path):
    require("bash")
    require("curl")
    run = make_run()
    commands = printed_commands(run.output)
    curls = [command for command in commands if command.startswith("curl")]
    assert any(command.startswith("source ") for command in commands) and len(curls) >= 4, run.output

    # The commands exactly as printed, in a shell elsewhere; curl's own config file makes each one
    # report its status after its body.
    (tmp_path / ".curlrc").write_text('silent\nshow-error\nwrite-out = "\\nHTTP_STATUS=%{http_code}\\n"\n')
    shell = subprocess.run(
        ["bash", "-c", "\n".join(commands)],
        check=False,  # its status is asserted below, after make run is stopped
        cwd=tmp_path,
        env={**os.environ, "CURL_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    deadline = time.monotonic() + 15  # the worker delivers the events to the demo's receiver
    expected = ("[receiver] message.read", "[receiver] message.received")
    while not all(line in run.output for line in expected) and time.monotonic() < deadline:
        time.sleep(0.2)
    run.ctrl_c()

    assert shell.returncode == 0, shell.stderr
    assert shell.stderr == ""
    statuses = re.findall(r"^HTTP_STATUS=(\d+)$", shell.stdout, re.MULTILINE)
    assert statuses == ["200"] * len(curls), shell.stdout
    demo = dict(
        line.removeprefix("export ").split("=", 1) for line in (REPO / ".kirim-demo.env").read_text().splitlines()
    )
    receipt = f'"status":"read","message_id":"{demo["WAMID"]}"'
    assert receipt in shell.stdout  # Kirim read the message ...
    assert f'"status": "read", "message_id": "{demo["WAMID"]}"' in shell.stdout  # ... and Meta was told
    assert '"kirim_status": 200' in shell.stdout  # the contact's message reached Kirim
    for event in ("message.received", "message.read"):  # and the demo's subscriber got both as events
        assert re.search(rf"\[receiver\] {event} evt_\w+ delivery=wbd_\w+ attempt=1 signature ok", run.output), (
            run.output
        )
