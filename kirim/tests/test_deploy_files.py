"""The deployment files agree with each other and with what their tools accept: compose.yaml's
services, the systemd units and the image run the same commands; `systemd-analyze verify` passes the
units and `nginx -t` the example config."""

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
UNITS = BASE_DIR / "deploy" / "systemd"
# What each process runs, from the application's directory with the runtime's bin on PATH.
COMMANDS = {
    "web": ["gunicorn", "-c", "gunicorn.conf.py", "kirim.wsgi"],
    "worker": [
        "python",
        "manage.py",
        "rqworker",
        "default",
        "--with-scheduler",
        "--job-class",
        "django_tasks_rq.backend.Job",
        "--worker-class",
        "rq.worker.SimpleWorker",
    ],
    "scheduler": ["python", "manage.py", "scheduler"],
}


def unit_command(unit):
    (line,) = re.findall(r"^ExecStart=(.*)$", (UNITS / unit).read_text(), re.MULTILINE)
    program, *arguments = shlex.split(line)
    return [Path(program).name, *arguments]


def test_compose_the_units_and_the_image_run_the_same_commands():
    services = yaml.safe_load((BASE_DIR / "compose.yaml").read_text())["services"]
    units = {"web": "kirim-web.service", "worker": "kirim-worker@.service", "scheduler": "kirim-scheduler.service"}
    cmd = re.search(r"^CMD (\[.*\])$", (BASE_DIR / "Dockerfile").read_text(), re.MULTILINE).group(1)

    for process, command in COMMANDS.items():
        assert services[process]["command"] == command, process
        assert unit_command(units[process]) == command, process
    assert yaml.safe_load(cmd) == COMMANDS["web"]
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze (systemd)")
def test_the_systemd_units_verify(tmp_path):
    """Installed in this checkout instead of /srv/kirim, so the programs they start exist."""
    for unit in UNITS.iterdir():
        (tmp_path / unit.name).write_text(unit.read_text().replace("/srv/kirim", str(BASE_DIR)))
    verified = subprocess.run(
        ["systemd-analyze", "verify", *sorted(str(path) for path in tmp_path.iterdir())],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr


@pytest.mark.skipif(not shutil.which("nginx"), reason="needs nginx (Debian's nginx-light)")
def test_the_nginx_example_is_valid(tmp_path):
    key, certificate = tmp_path / "privkey.pem", tmp_path / "fullchain.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kirim.example.com",
         "-days", "1", "-keyout", key, "-out", certificate],
        check=True, capture_output=True,
    )  # fmt: skip
    site = (BASE_DIR / "deploy" / "nginx" / "kirim.conf").read_text()
    site = site.replace("/etc/ssl/kirim/privkey.pem", str(key)).replace(
        "/etc/ssl/kirim/fullchain.pem", str(certificate)
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid; error_log stderr; events {{}}\nhttp {{ access_log off;\n{site}\n}}\n"
    )
    checked = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
