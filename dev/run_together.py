"""Run several processes as one: `python -m dev.run_together "name: command" "name: command" ...`.

`make run` starts the demo's processes through this. Each command runs in a process group of its own,
so whatever it forks (runserver's autoreloader child) is stopped with it. Ctrl-C, SIGTERM or SIGHUP,
or any one process exiting, stops them all; this returns only once every one of their processes is
gone, so their ports are free for the next start. Standard library only: it runs before Django does.
"""

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_SECONDS = 10  # for a clean exit after SIGTERM, then SIGKILL
POLL_SECONDS = 0.1


def parse(spec):
    name, colon, command = spec.partition(":")
    if not colon or not name.strip() or not command.strip():
        raise SystemExit(f"run_together: expected 'name: command', got {spec!r}")
    return name.strip(), shlex.split(command)


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member that changed its user is still a member
        return True
    return True


def signal_group(pgid, signum):
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def reap_orphans():
    """Our own exited children, so they do not linger as zombies that keep their group 'alive'."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def stop_all(started):
    """SIGTERM to every group, SIGKILL to what is left after the grace period; wait until all are gone."""
    for process in started.values():
        signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline:
        reap_orphans()
        if not any(group_alive(process.pid) for process in started.values()):
            return
        time.sleep(POLL_SECONDS)
    for name, process in started.items():
        if group_alive(process.pid):
            print(f"run_together: {name} ignored SIGTERM for {GRACE_SECONDS}s; killing it", file=sys.stderr)
            signal_group(process.pid, signal.SIGKILL)
    for process in started.values():
        process.wait()


def main(specs):
    if not specs:
        raise SystemExit("usage: python -m dev.run_together 'name: command' ...")
    commands = [parse(spec) for spec in specs]
    stop_signal = []
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda signum, frame: stop_signal.append(signum))

    started = {}
    exit_code = 0
    try:
        for name, command in commands:
            if stop_signal:
                break
            # Its own session: the terminal's Ctrl-C reaches us alone, and we stop each group in turn.
            try:
                started[name] = subprocess.Popen(command, start_new_session=True)
            except OSError as error:
                print(f"run_together: cannot start {name}: {error}", file=sys.stderr)
                return 1
        while not stop_signal:
            exited = next(((name, p.returncode) for name, p in started.items() if p.poll() is not None), None)
            if exited:
                name, code = exited
                others = ", ".join(other for other in started if other != name)
                print(f"run_together: {name} exited with status {code}; stopping {others}", file=sys.stderr)
                exit_code = code if code > 0 else 1  # killed by a signal: negative here
                break
            time.sleep(POLL_SECONDS)
    finally:
        stop_all(started)
    return exit_code  # 0 when stopped on purpose (Ctrl-C is how a demo ends), else the failure's


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
