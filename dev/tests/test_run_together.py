"""dev/run_together.py, what `make run` starts its processes with: one process failing stops the
others and everything they forked, and SIGTERM stops them all."""

import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings

# A process that forks a child into its own group and then waits, as runserver's autoreloader does;
# it writes both pids to a file so the test can look for them afterwards.
SERVER = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open(sys.argv[1], "w").write(f"{os.getpid()} {child.pid}")
time.sleep(120)
"""


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is gone, unreaped
    except FileNotFoundError:
        return False


@pytest.fixture
def run_together():
    """Start the supervisor in a session of its own; whatever happens, it is gone after the test."""
    started = []

    def start(*specs):
        started.append(
            subprocess.Popen(
                [sys.executable, "-m", "dev.run_together", *specs],
                cwd=settings.BASE_DIR,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
        )
        return started[-1]

    yield start
    for supervisor in started:
        supervisor.kill()
        supervisor.wait()


def wait_for_pids(path, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().split()) == 2:
            return [int(pid) for pid in path.read_text().split()]
        time.sleep(0.05)
    pytest.fail("the long-running process did not start")


@pytest.fixture
def server(tmp_path):
    """The spec of a long-running process, and the file its pids will be in; nothing outlives the test."""
    script, pids = tmp_path / "server.py", tmp_path / "pids"
    script.write_text(SERVER)
    yield f"server: {sys.executable} {script} {pids}", pids
    for pid in pids.read_text().split() if pids.exists() else []:
        if alive(int(pid)):
            os.kill(int(pid), signal.SIGKILL)


def test_one_process_failing_stops_the_others_and_what_they_forked(run_together, server):
    spec, pid_file = server
    supervisor = run_together(spec, f"failing: {sys.executable} -c 'import sys, time; time.sleep(2); sys.exit(3)'")
    pids = wait_for_pids(pid_file)

    _, errors = supervisor.communicate(timeout=30)

    assert supervisor.returncode == 3
    assert "failing exited with status 3; stopping server" in errors
    assert [pid for pid in pids if alive(pid)] == []


def test_sigterm_stops_every_process_and_exits_0(run_together, server):
    spec, pid_file = server
    supervisor = run_together(spec)
    pids = wait_for_pids(pid_file)

    supervisor.send_signal(signal.SIGTERM)
    supervisor.communicate(timeout=30)

    assert supervisor.returncode == 0
    assert [pid for pid in pids if alive(pid)] == []
