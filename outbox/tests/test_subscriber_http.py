"""The guard in front of subscribers' URLs (outbox/subscriber_http.py): which addresses it refuses, the
networks an operator allows, and that the connection goes to the very address that was checked."""

import errno
import http.server
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading

import pytest
import urllib3.util.connection
from django.core.exceptions import ImproperlyConfigured

from kirim import settings as kirim_settings
from outbox import subscriber_http
from outbox.subscriber_http import UnsafeUrl, check_url

PUBLIC = "93.184.215.14"  # a documentation host's public address; nothing here ever connects to it


@pytest.fixture(autouse=True)
def public_dns():
    """These tests are of the resolver itself: the stand-in for it that every other test of the outbox
    has (outbox/tests/conftest.py) stays out."""


class Answers(dict):
    """Answers by name, and the names asked, in order."""

    def __init__(self):
        super().__init__()
        self.asked = []


@pytest.fixture
def dns(monkeypatch):
    """DNS for the names a test gives, as lists of answers taken in turn (the last one repeats);
    any other name, numeric hosts included, resolves as usual."""
    answers = Answers()
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real_getaddrinfo(host, port, *args, **kwargs)
        answers.asked.append(host)
        turn = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in turn]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


@pytest.mark.parametrize(
    "host",
    [
        "[::127.0.0.1]",  # IPv4-compatible
        "[::ffff:127.0.0.1]",  # IPv4-mapped
        "[::ffff:0:7f00:1]",  # IPv4-translated
        "[64:ff9b::127.0.0.1]",  # NAT64's well-known prefix
        "[64:ff9b::10.0.0.1]",
        "[64:ff9b::169.254.169.254]",
        "[64:ff9b:1::a00:1]",  # NAT64 for local use
        "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
        "[2002:a9fe:a9fe::1]",  # 6to4 of 169.254.169.254
        "[fec0::1]",  # site-local
        "[::]",
        "[::1]",
    ],
)
def test_ipv6_forms_of_a_private_ipv4_address_are_refused(host):
    with pytest.raises(UnsafeUrl, match="private"):
        check_url(f"https://{host}/hook")


@pytest.mark.parametrize(
    "host", ["[64:ff9b::5db8:d70e]", "[2002:5db8:d70e::1]", "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]"]
)
def test_ipv6_forms_of_a_public_address_pass(host):
    assert check_url(f"https://{host}/hook")


@pytest.mark.parametrize("address", ["::127.0.0.1", "64:ff9b::127.0.0.1", "2002:7f00:1::", "::ffff:0:a00:1"])
def test_a_name_resolving_to_an_ipv6_form_of_a_private_address_is_refused(dns, address):
    dns["hooks.example.com"] = [[PUBLIC, address]]
    with pytest.raises(UnsafeUrl, match="private"):
        check_url("https://hooks.example.com/hook")


@pytest.fixture
def corporate_network(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("10.20.0.0/16")]


@pytest.mark.parametrize(
    "url, answer",
    [
        ("https://crm.corp.example/hook", "10.20.1.5"),
        ("https://crm.corp.internal/hook", "10.20.1.5"),  # a local name, resolving into the allowed network
        ("https://10.20.1.5/hook", None),
        ("https://[::ffff:10.20.1.5]/hook", None),
        ("https://crm.example.com/hook", PUBLIC),  # public addresses stay allowed
    ],
)
def test_the_allowed_networks_let_a_company_subscribe_its_own_receivers(corporate_network, dns, url, answer):
    if answer:
        dns[url.split("/")[2]] = [[answer]]
    assert check_url(url)


@pytest.mark.parametrize(
    "url, answer",
    [
        ("http://crm.corp.example/hook", "10.20.1.5"),  # https is still required
        ("https://crm.corp.example/hook", "10.21.0.1"),  # outside the allowed network
        ("https://crm.corp.example/hook", "127.0.0.1"),
        ("https://crm.corp.internal/hook", PUBLIC),  # a local name must resolve into the allowed networks
        ("https://localhost/hook", "127.0.0.1"),
    ],
)
def test_the_allowed_networks_open_nothing_else(corporate_network, dns, url, answer):
    dns[url.split("/")[2]] = [[answer]]
    with pytest.raises(UnsafeUrl):
        check_url(url)


def test_one_answer_outside_the_allowed_networks_refuses_the_host(corporate_network, dns):
    dns["crm.corp.example"] = [["10.20.1.5", "192.168.1.1"]]
    with pytest.raises(UnsafeUrl, match="private"):
        check_url("https://crm.corp.example/hook")


def test_the_allowed_networks_are_read_as_cidrs_and_a_bad_one_names_the_setting(monkeypatch):
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", "10.20.0.0/16, fd00:1::/64")
    assert [str(n) for n in kirim_settings.networks("WEBHOOK_ALLOWED_NETWORKS")] == ["10.20.0.0/16", "fd00:1::/64"]
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", "10.20.0.1/16")
    with pytest.raises(ImproperlyConfigured, match="WEBHOOK_ALLOWED_NETWORKS"):
        kirim_settings.networks("WEBHOOK_ALLOWED_NETWORKS")


# --- The connection goes where the check looked ----------------------------------------------------


@pytest.fixture
def listener():
    """A TCP port on 127.0.0.1 that counts the connections made to it, answering none of them."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            accepted.append(connection)
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


@pytest.fixture
def connections(monkeypatch):
    """Every address urllib3 connects to; the public one is refused here, so no test reaches the Internet."""
    made = []
    real_create_connection = urllib3.util.connection.create_connection

    def create_connection(address, *args, **kwargs):
        made.append(address)
        if address[0] == PUBLIC:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "refused by the test")
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    return made


def test_a_host_that_answers_public_to_the_check_and_private_to_the_connection_is_not_reached(
    dns, listener, connections, settings
):
    """DNS rebinding: the first answer (the check's) is public, every later one is 127.0.0.1, where a
    listener counts connections. Kirim connects to the public address it checked, or nowhere."""
    settings.WEBHOOK_TIMEOUT = 2
    port, accepted = listener
    dns["rebind.example.com"] = [[PUBLIC], ["127.0.0.1"]]

    answer = subscriber_http.post(f"https://rebind.example.com:{port}/hook", b"{}", {})

    assert accepted == []
    assert connections == [(PUBLIC, port)]
    assert answer.status_code is None and "refused" in answer.error.lower()
    assert dns.asked == ["rebind.example.com"]  # asked once, by the check


def test_each_checked_address_is_tried_in_dns_order_until_one_connects(dns, listener, connections, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    settings.WEBHOOK_TIMEOUT = 2
    port, accepted = listener
    dns["crm.corp.example"] = [[PUBLIC, "127.0.0.1"], ["10.9.9.9"]]

    subscriber_http.post(f"https://crm.corp.example:{port}/hook", b"{}", {})

    assert connections == [(PUBLIC, port), ("127.0.0.1", port)]  # never 10.9.9.9, the later answer
    assert len(accepted) == 1


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for hooks.example.test (also the trust anchor the client is given)."""
    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=hooks.example.test",
         "-addext", "subjectAltName=DNS:hooks.example.test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def https_receiver(certificate):
    """An HTTPS receiver on 127.0.0.1 with the certificate above; records each request's Host header
    and the name the client asked for in SNI."""
    cert, key = certificate
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append({"host": self.headers["Host"], "sni": self.connection.sni})
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def remember_sni(connection, name, _context):
        connection.sni = name

    context.sni_callback = remember_sni
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


@pytest.fixture
def trusting_the_test_certificate(certificate, monkeypatch):
    monkeypatch.setattr(subscriber_http._session, "verify", str(certificate[0]))


def test_the_pinned_connection_keeps_the_name_for_host_sni_and_the_certificate(
    dns, https_receiver, trusting_the_test_certificate, settings
):
    settings.WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.1/32")]
    port, seen = https_receiver
    dns["hooks.example.test"] = [["127.0.0.1"], ["10.9.9.9"]]

    answer = subscriber_http.post(f"https://hooks.example.test:{port}/hook", b"{}", {})

    assert answer.status_code == 204, answer.error
    assert seen == [{"host": f"hooks.example.test:{port}", "sni": "hooks.example.test"}]


def test_the_certificate_is_still_checked_against_the_name(
    dns, https_receiver, trusting_the_test_certificate, settings
):
    settings.WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.1/32")]
    port, seen = https_receiver
    dns["other.example.test"] = [["127.0.0.1"]]

    answer = subscriber_http.post(f"https://other.example.test:{port}/hook", b"{}", {})

    assert answer.status_code is None and "certificate" in answer.error.lower()
    assert seen == []
