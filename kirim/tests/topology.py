"""Production's parts on one machine for the tests of this folder: PgBouncer in transaction mode, app
hosts running the deploy files' commands, and nginx ending TLS in front of them (deploy/nginx/kirim.conf)."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from conftest import free_port
from kirim.tests.test_deploy_files import COMMANDS

UPSTREAMS = "# the hosts\n"  # where the example's hosts stood, for the topology's


def wait_for_port(port, what):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port}")


def this_interpreter(command):
    """A deploy file's command, run by this test's interpreter (its environment) instead of `python`."""
    _python, *arguments = command
    return [sys.executable, *arguments]


def children(pid):
    listed = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    return [int(child) for child in listed.split()]


@dataclass
class Host:
    url: str
    log: Path  # gunicorn's: one JSON line per request
    scheduler_log: Path
    gunicorn: subprocess.Popen  # the master; its children are gunicorn's workers
    worker: subprocess.Popen
    scheduler: subprocess.Popen

    def crash(self):
        """Every process of the host killed at once, as when the machine dies: gunicorn's workers and
        the task worker's forked RQ scheduler included."""
        parents = [self.gunicorn.pid, self.worker.pid, self.scheduler.pid]
        for pid in parents + [child for parent in parents for child in children(parent)]:
            os.kill(pid, signal.SIGKILL)


class Topology:
    """Used as a context: every process it started is stopped at the end, and its directory removed."""

    def __init__(self, start_gunicorn):
        self.directory = Path(tempfile.mkdtemp(prefix="kirim-topology-"))
        self.directory.chmod(0o755)  # PgBouncer reads its file as postgres
        self.start_gunicorn = start_gunicorn
        self.processes = []
        self.hosts = []

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            process.wait(30)
        shutil.rmtree(self.directory, ignore_errors=True)

    def spawn(self, command, stderr=subprocess.DEVNULL, **kwargs):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, **kwargs)
        self.processes.append(process)
        return process

    def pgbouncer(self, database=None):
        """PgBouncer in front of the test's PostgreSQL; the DATABASE_URL of `database` (the test database by
        default) through it."""
        port = free_port()
        (self.directory / "pgbouncer.ini").write_text(
            "[databases]\n* = host=127.0.0.1 port=5432 user=kirim password=kirim\n"
            f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\nauth_type = any\n"
            "pool_mode = transaction\nmax_client_conn = 500\ndefault_pool_size = 20\n"
        )
        # PgBouncer refuses to run as root.
        self.spawn(["pgbouncer", "-u", "postgres", str(self.directory / "pgbouncer.ini")])
        wait_for_port(port, "pgbouncer")
        db = settings.DATABASES["default"]
        return f"postgres://{db['USER']}:{db['PASSWORD']}@127.0.0.1:{port}/{database or db['NAME']}"

    def host(self, environment):
        """An app host as the deploy files run it: gunicorn, its task worker and its scheduler."""
        log = (self.directory / f"host{len(self.hosts)}.log").open("w")
        url = self.start_gunicorn(workers=2, log=log, **environment)
        env = {**os.environ, **environment}
        worker = self.spawn(this_interpreter(COMMANDS["worker"]), cwd=settings.BASE_DIR, env=env)
        scheduler_log = self.directory / f"scheduler{len(self.hosts)}.log"
        scheduler = self.spawn(
            [*this_interpreter(COMMANDS["scheduler"]), "--tick", "0.05"], cwd=settings.BASE_DIR,
            env={**env, "LOG_LEVEL": "INFO"}, stderr=scheduler_log.open("w"),
        )  # fmt: skip
        self.hosts.append(Host(url, Path(log.name), scheduler_log, self.start_gunicorn.arbiter[url], worker, scheduler))
        return url

    def nginx(self, urls=None):
        """nginx from deploy/nginx/kirim.conf in front of `urls` (default: the hosts'); its HTTPS address."""
        key, certificate = self.directory / "privkey.pem", self.directory / "fullchain.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1",
             "-keyout", key, "-out", certificate], check=True, capture_output=True,
        )  # fmt: skip
        site = (settings.BASE_DIR / "deploy" / "nginx" / "kirim.conf").read_text()
        example_hosts = "    server 10.0.0.11:8000 max_fails=3 fail_timeout=10s;\n    server 10.0.0.12:8000 max_fails=3 fail_timeout=10s;\n"
        https, http = free_port(), free_port()
        replacements = {
            example_hosts: UPSTREAMS,
            "listen 443 ssl;": f"listen 127.0.0.1:{https} ssl;",
            "listen 80;": f"listen 127.0.0.1:{http};",
            "/etc/ssl/kirim/privkey.pem": str(key),
            "/etc/ssl/kirim/fullchain.pem": str(certificate),
        }
        for example, here in replacements.items():
            assert example in site, example
            site = site.replace(example, here)
        self.site = (
            f"daemon off; pid {self.directory}/nginx.pid; error_log stderr; worker_processes 2; events {{}}\n"
            f"http {{ access_log off;\n{site}\n}}\n"
        )
        self.upstreams = urls or [host.url for host in self.hosts]
        self.write_nginx_conf()
        self.balancer = self.spawn(["nginx", "-p", str(self.directory), "-c", str(self.directory / "nginx.conf")])
        wait_for_port(https, "nginx")
        self.certificate = str(certificate)  # clients verify the balancer's TLS against it
        return f"https://127.0.0.1:{https}"

    def write_nginx_conf(self, down=()):
        upstreams = "".join(
            f"    server {url.removeprefix('http://')} max_fails=3 fail_timeout=10s{' down' if url in down else ''};\n"
            for url in self.upstreams
        )
        (self.directory / "nginx.conf").write_text(self.site.replace(UPSTREAMS, upstreams))

    def drain(self, down=()):
        """Mark the hosts at `down` out of the balancer, as an operator does before stopping them: nginx
        reloads, and returns once its old workers have finished the requests they were passing on."""
        self.write_nginx_conf(down)
        old_workers = set(children(self.balancer.pid))
        self.balancer.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while old_workers & set(children(self.balancer.pid)):
            assert time.monotonic() < deadline, "nginx's old workers did not finish"
            time.sleep(0.05)

    def served_by_each(self):
        """How many API requests each host has logged (kirim.requests: one JSON line each)."""
        return [host.log.read_text().count('"route": "v1/') for host in self.hosts]
