"""Connecting to vCenter (the simulator): verified TLS three ways, insecure only loudly, and
every way a connection fails gives one sentence naming the cause."""

from __future__ import annotations

import base64
import dataclasses
import gc
import logging
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import weakref
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import requests.adapters
import yaml
from pyVim.connect import SmartConnect
from pyVmomi import pbm, vim

from sim_site import site_data, site_for
from tkgs_lib.errors import VSphereFault, ConnectionFailed, NotFound, SiteError
from tkgs_simulators.vcsim import make_self_signed_cert
from tkgs_lib.vsphere.connection import connect
from tkgs_lib.vsphere.inventory import Inventory
from tkgs_lib.errors import RestError
from tkgs_lib.vsphere.rest import RestClient
from tkgs_lib.site.patterns import normalize_thumbprint
from tkgs_lib.vsphere.tls import InsecureTlsWarning, PinMismatch, TlsPolicy

pytestmark = pytest.mark.vcsim

WRONG_PIN = ":".join(["AB"] * 32)


def _vcenter(sim, **overrides):
    return site_for(sim, **{f"vcenter.{k}": v for k, v in overrides.items()}).vcenter


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


# --- verified TLS ------------------------------------------------------------------------------

def test_ca_file_gives_verified_soap_rest_and_spbm_sessions(vcsim_module):
    with connect(_vcenter(vcsim_module), password=vcsim_module.password) as session:
        assert session.tls.mode == "ca_file"
        assert session.content.about.version.startswith("7.")
        assert session.content.sessionManager.currentSession.userName == vcsim_module.username
        who = session.rest.post("/rest/com/vmware/cis/session", action="get")
        assert who["user"] == vcsim_module.username
        # SPBM rides on the SOAP session's cookie: no second login.
        assert session.pbm.aboutInfo.name == "PBM"
        ids = session.pbm.profileManager.PbmQueryProfile(
            resourceType=pbm.profile.ResourceType(resourceType="STORAGE"), profileCategory="REQUIREMENT")
        names = {p.name for p in session.pbm.profileManager.PbmRetrieveContent(ids)}
        assert "vSAN Default Storage Policy" in names


def test_pinned_thumbprint_connects_in_any_spelling(vcsim_module):
    spelled = vcsim_module.thumbprint.replace(":", "").lower()
    with connect(_vcenter(vcsim_module, ca_file=None, thumbprint=spelled),
                 password=vcsim_module.password) as session:
        assert session.tls.mode == "thumbprint"
        assert session.tls.thumbprint == vcsim_module.thumbprint
        assert session.rest.get("/rest/com/vmware/cis/tagging/category") in (None, [])
        assert session.content.about.apiType == "VirtualCenter"


def test_wrong_thumbprint_is_refused_naming_both_fingerprints(vcsim_module):
    with pytest.raises(ConnectionFailed) as caught:
        connect(_vcenter(vcsim_module, ca_file=None, thumbprint=WRONG_PIN), password=vcsim_module.password)
    message = str(caught.value)
    assert "does not match the pinned vcenter.thumbprint" in message
    assert f"expected {WRONG_PIN}" in message
    assert f"got {vcsim_module.thumbprint}" in message


def test_pin_is_enforced_by_both_clients_not_only_up_front(vcsim_module):
    """pyvmomi's own thumbprint= is not checked with an unverified context; our context checks it."""
    tls = TlsPolicy(thumbprint=WRONG_PIN)
    with pytest.raises(PinMismatch):
        SmartConnect(host=vcsim_module.host, port=vcsim_module.port, user=vcsim_module.username,
                     pwd=vcsim_module.password, sslContext=tls.ssl_context())
    rest = RestClient(vcsim_module.host, vcsim_module.port, tls)
    with pytest.raises(ConnectionFailed, match="TLS failed under the pinned SHA-256 fingerprint"):
        rest.login(vcsim_module.username, vcsim_module.password)


def test_ca_file_that_did_not_sign_vcenter_is_named(vcsim_module, tmp_path):
    other_ca, _ = make_self_signed_cert(tmp_path / "other")
    with pytest.raises(ConnectionFailed) as caught:
        connect(_vcenter(vcsim_module, ca_file=str(other_ca)), password=vcsim_module.password)
    message = str(caught.value)
    assert message.startswith(f"vCenter's certificate is not trusted by {other_ca}")
    assert vcsim_module.thumbprint in message  # what the server presents, to compare out of band


def test_system_ca_store_does_not_trust_the_self_signed_simulator(vcsim_module):
    with pytest.raises(ConnectionFailed) as caught:
        connect(_vcenter(vcsim_module, ca_file=None), password=vcsim_module.password)
    message = str(caught.value)
    assert "is not trusted by the system's CA store" in message
    assert "vcenter.ca_file" in message and "vcenter.thumbprint" in message


def test_system_mode_trusts_the_system_store_only_whatever_the_environment_says(vcsim_module, monkeypatch):
    """SOAP and REST trust exactly the same store: neither REQUESTS_CA_BUNDLE, nor SSL_CERT_FILE /
    SSL_CERT_DIR, nor the CA bundle requests ships (certifi) can quietly add the simulator's CA."""
    sim, ca = vcsim_module, str(vcsim_module.ca_file)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.setenv(name, ca)
    monkeypatch.setenv("SSL_CERT_DIR", str(vcsim_module.ca_file.parent))
    monkeypatch.setattr(requests.adapters, "DEFAULT_CA_BUNDLE_PATH", ca)  # as if certifi trusted it
    # The environment really is in effect: Python's own default context now trusts the simulator.
    with socket.create_connection((sim.host, sim.port)) as raw:
        ssl.create_default_context().wrap_socket(raw, server_hostname=sim.host).close()

    tls = TlsPolicy()
    assert tls.mode == "system"
    with pytest.raises(ssl.SSLCertVerificationError):  # SOAP
        SmartConnect(host=sim.host, port=sim.port, user=sim.username, pwd=sim.password,
                     sslContext=tls.ssl_context())
    rest = RestClient(sim.host, sim.port, tls)  # REST
    with pytest.raises(ConnectionFailed, match="TLS failed under the system's CA store"):
        rest.login(sim.username, sim.password)
    with pytest.raises(ConnectionFailed, match="not trusted by the system's CA store"):  # the up-front check
        connect(_vcenter(sim, ca_file=None), password=sim.password)


def test_a_malformed_server_name_is_one_sentence_naming_vcenter_server(vcsim_module):
    """The site's own check reports such a name too; connect() must not trace back on it either."""
    for server in ("vc..test.corp", "x" * 64 + ".test.corp"):
        vcenter = dataclasses.replace(_vcenter(vcsim_module), server=server)
        with pytest.raises(ConnectionFailed) as caught:
            connect(vcenter, password=vcsim_module.password)
        assert str(caught.value).startswith(f"vcenter.server '{server}' is not a valid host name (label empty "
                                            f"or too long): ")


def test_certificate_for_another_name_is_named(tmp_path):
    """The simulator's certificate always names 127.0.0.1: a one-shot TLS listener stands in for a
    vCenter whose certificate names another host (only the handshake is needed)."""
    cert, key = make_self_signed_cert(tmp_path, host="vcenter.elsewhere.test")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve_two():  # the refused handshake, then the one that reads the fingerprint for the message
            for _ in range(2):
                conn, _ = listener.accept()
                try:
                    server_context.wrap_socket(conn, server_side=True).close()
                except (ssl.SSLError, OSError):
                    conn.close()  # the client hangs up once it sees the wrong name

        thread = threading.Thread(target=serve_two, daemon=True)
        thread.start()
        with pytest.raises(ConnectionFailed) as caught:
            TlsPolicy(ca_file=str(cert)).confirm("127.0.0.1", port, timeout=5)
        thread.join(5)
    assert "does not name '127.0.0.1'" in str(caught.value)
    assert "vcenter.server" in str(caught.value)


def test_bad_thumbprints_and_both_trust_settings_are_site_errors():
    with pytest.raises(SiteError, match="SHA-1"):
        normalize_thumbprint("AB" * 20)
    with pytest.raises(SiteError, match="64 hex digits"):
        normalize_thumbprint("not a fingerprint")
    with pytest.raises(SiteError, match="got 62 characters"):
        normalize_thumbprint("sha256 Fingerprint=" + ":".join(["AB"] * 31))
    with pytest.raises(SiteError, match="not all hex digits"):
        normalize_thumbprint("sha256 Fingerprint=" + ":".join(["ZZ"] * 32))
    with pytest.raises(SiteError, match="either ca_file or thumbprint"):
        TlsPolicy(ca_file="/x.pem", thumbprint=WRONG_PIN)
    with pytest.raises(SiteError, match="does not exist"):
        TlsPolicy(ca_file="/nonexistent/ca.pem").ssl_context()


def _openssl_fingerprint(cert, algorithm: str) -> str:
    """What a person pastes: the exact line ``openssl x509 -noout -fingerprint -<algorithm>`` prints."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command on this machine")
    return subprocess.run(["openssl", "x509", "-noout", "-fingerprint", f"-{algorithm}", "-in", str(cert)],
                          capture_output=True, text=True, check=True).stdout


def test_openssls_fingerprint_line_pins_as_pasted_for_the_site_check_and_the_connection(vcsim_module):
    line = _openssl_fingerprint(vcsim_module.ca_file, "sha256")
    assert line.lower().startswith("sha256 fingerprint=")  # OpenSSL 3; 1.1 writes SHA256
    for spelling in (line, line.replace(line.split("=")[0], "SHA256 Fingerprint"),
                     vcsim_module.thumbprint.replace(":", " ").lower()):
        assert normalize_thumbprint(spelling) == vcsim_module.thumbprint, spelling
    # site_for fails on any error finding: the site check takes the pasted line too.
    site = site_for(vcsim_module, **{"vcenter.ca_file": None, "vcenter.thumbprint": line})
    with connect(site.vcenter, password=vcsim_module.password) as session:
        assert session.tls.thumbprint == vcsim_module.thumbprint
        assert session.content.about.apiType == "VirtualCenter"
    with pytest.raises(SiteError, match="SHA-1"):
        normalize_thumbprint(_openssl_fingerprint(vcsim_module.ca_file, "sha1"))
    with pytest.raises(SiteError, match="MD5 fingerprint"):
        normalize_thumbprint(_openssl_fingerprint(vcsim_module.ca_file, "md5"))


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_insecure_is_an_explicit_opt_in_that_warns_loudly(vcsim_module, caplog):
    vcenter = _vcenter(vcsim_module, ca_file=None, insecure=True)
    with caplog.at_level(logging.WARNING), pytest.warns(InsecureTlsWarning, match="TLS verification is OFF"):
        with connect(vcenter, password=vcsim_module.password) as session:
            assert session.tls.mode == "insecure"
            assert session.content.about.apiType == "VirtualCenter"
    assert any(r.levelno == logging.WARNING and "TLS verification is OFF" in r.getMessage()
               for r in caplog.records)


# --- login and reachability --------------------------------------------------------------------

def test_wrong_password_is_refused_naming_the_user(vcsim_module):
    with pytest.raises(ConnectionFailed) as caught:
        connect(_vcenter(vcsim_module), password=vcsim_module.password + "-wrong")
    assert str(caught.value).startswith(f"vCenter refused the login for user '{vcsim_module.username}'")


def test_password_comes_from_the_named_environment_variable(vcsim_module, monkeypatch):
    vcenter = _vcenter(vcsim_module, password_env="TKGS_TEST_VC_PASSWORD")
    monkeypatch.delenv("TKGS_TEST_VC_PASSWORD", raising=False)
    with pytest.raises(SiteError, match="TKGS_TEST_VC_PASSWORD"):  # headless: no prompt, say what to set
        connect(vcenter)
    monkeypatch.setenv("TKGS_TEST_VC_PASSWORD", vcsim_module.password)
    with connect(vcenter) as session:
        assert session.content.sessionManager.currentSession.userName == vcsim_module.username
    monkeypatch.setenv("TKGS_TEST_VC_PASSWORD", "wrong")
    with pytest.raises(ConnectionFailed, match=r"password in \$TKGS_TEST_VC_PASSWORD"):
        connect(vcenter)


def test_unreachable_host_is_named():
    port = _closed_port()
    vcenter = site_for(_FakeSim(port)).vcenter
    with pytest.raises(ConnectionFailed) as caught:
        connect(vcenter, password="unused")
    assert str(caught.value).startswith(f"cannot reach vCenter at 127.0.0.1:{port}: the connection was refused")


class _FakeSim:
    """Just enough of VCenterSimulator for site_for, pointing at a port nothing listens on."""

    host, username, ca_file = "127.0.0.1", "administrator@vsphere.local", None

    def __init__(self, port: int) -> None:
        self.port = port


def test_password_never_appears_in_logs_errors_or_reprs(vcsim_module, caplog):
    secret = vcsim_module.password
    basic = base64.b64encode(f"{vcsim_module.username}:{secret}".encode()).decode()
    texts = []
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(ConnectionFailed) as wrong:
            connect(_vcenter(vcsim_module), password=secret + "-wrong")
        texts.append(str(wrong.value))
        with pytest.raises(ConnectionFailed) as pinned:
            connect(_vcenter(vcsim_module, ca_file=None, thumbprint=WRONG_PIN), password=secret)
        texts.append(str(pinned.value))
        with connect(_vcenter(vcsim_module), password=secret) as session:
            texts += [repr(session), repr(session.rest), str(vars(session))]
            with pytest.raises(RestError) as rest_error:
                session.rest.get("/rest/com/vmware/cis/tagging/category/id:nope")
            texts.append(str(rest_error.value))
    texts.append(caplog.text)
    for text in texts:
        assert secret not in text and basic not in text


# --- logout ------------------------------------------------------------------------------------

def test_close_logs_out_of_rest_and_soap(vcsim_module):
    session = connect(_vcenter(vcsim_module), password=vcsim_module.password)
    token = session.rest.session.headers["vmware-api-session-id"]
    stub = session.si._stub
    session.close()
    session.close()  # twice is harmless
    http = TlsPolicy.from_site(session.vcenter).configure(requests.Session())
    answer = http.get(f"{session.rest.base_url}/rest/com/vmware/cis/tagging/category",
                      headers={"vmware-api-session-id": token})
    assert answer.status_code == 401
    with pytest.raises(VSphereFault) as refused:  # the session's stub says it in the error tree, the fault kept
        vim.ServiceInstance("ServiceInstance", stub).content.sessionManager.currentSession  # noqa: B018
    assert isinstance(refused.value.fault, vim.fault.NotAuthenticated)


EXITS_WITHOUT_CLOSING = """
import sys
from tkgs_lib.site import load_site
from tkgs_lib.vsphere.connection import connect

session = connect(load_site(sys.argv[1]).vcenter)
print(session.rest.session.headers["vmware-api-session-id"], session.content.sessionManager.currentSession.key,
      flush=True)
raise RuntimeError("a notebook cell failed before session.close()")
"""


def test_a_session_logs_out_when_the_process_ends_without_close(vcsim_module, tmp_path):
    """A kernel that shuts down after a failed cell: atexit logs both sessions out."""
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump(site_data(vcsim_module)))
    env = {**os.environ, "TKGS_VCENTER_PASSWORD": vcsim_module.password}
    result = subprocess.run([sys.executable, "-c", EXITS_WITHOUT_CLOSING, str(site_file)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "a notebook cell failed" in result.stderr, result.stderr[-2000:]
    token, soap_key = result.stdout.split()

    vcenter = _vcenter(vcsim_module)
    http = TlsPolicy.from_site(vcenter).configure(requests.Session())
    answer = http.get(f"https://{vcenter.server}:{vcenter.port}/rest/com/vmware/cis/tagging/category",
                      headers={"vmware-api-session-id": token})
    assert answer.status_code == 401  # the REST session is gone
    with connect(vcenter, password=vcsim_module.password) as admin:
        keys = {s.key for s in admin.content.sessionManager.sessionList}
        assert admin.content.sessionManager.currentSession.key in keys  # the list is real...
        assert soap_key not in keys  # ...and the SOAP session is gone from it


def test_close_unregisters_its_exit_handler(vcsim_module):
    """A long-lived kernel that connects many times keeps no exit handler, so no session, per closed one."""
    session = connect(_vcenter(vcsim_module), password=vcsim_module.password)
    alive = weakref.ref(session)
    session.close()
    del session
    gc.collect()
    assert alive() is None


# --- REST client -------------------------------------------------------------------------------

def test_only_https_urls_on_the_sessions_own_host_and_port_are_its_own():
    """The session id header may go only there (the upload addresses vCenter hands out included)."""
    rest = RestClient("127.0.0.1", 8443, TlsPolicy())
    own = ["https://127.0.0.1:8443/cis/data/x/disk.vmdk", "HTTPS://127.0.0.1:8443", "https://127.0.0.1:8443/a?b=c"]
    foreign = ["http://127.0.0.1:8443/x", "https://127.0.0.2:8443/x", "https://127.0.0.1:9443/x",
               "https://127.0.0.1/x", "https://localhost:8443/x", "https://127.0.0.1:8443@evil.test/x",
               "https://evil.test/?https://127.0.0.1:8443/", "https://*:8443/x", "https://127.0.0.1:port/x",
               "//127.0.0.1:8443/x", "/cis/data/x",
               # Parsers disagree on these: urlsplit sees host 127.0.0.1, urllib3 (what requests
               # sends with) sees evil.test or 127.0.0.2:1, because it ends the authority at "\\".
               "https://evil.test\\@127.0.0.1:8443/x", "https://127.0.0.2:1\\@127.0.0.1:8443/x",
               "https://127.0.0.1:8443\\@evil.test/x", "https://127.0.0.1:8443/cis\\data/x",
               # User info, whitespace and control characters anywhere are refused outright.
               "https://user@127.0.0.1:8443/x", "https://:@127.0.0.1:8443/x", " https://127.0.0.1:8443/x",
               "https://127.0.0.1:8443/x ", "https://127.0.0.1:8443/a b", "https://127.0.0.1:8443\t/x",
               "https://127.0.0.1:8443/x\r\nHost: evil.test", "https://127.0.0.1:8443/\x00x",
               "https://127.0.0.1:8443/\x7fx", "https://127.0.0.1:8443/\u00a0x"]
    assert [u for u in own if rest.own_url(u) is None] == []
    assert [u for u in foreign if rest.own_url(u) is not None] == []
    # What is sent is rebuilt on the session's own base URL: only the path and query are taken.
    assert rest.own_url("HTTPS://127.0.0.1:8443/cis/data/x/disk.vmdk?a=b#frag") == \
        "https://127.0.0.1:8443/cis/data/x/disk.vmdk?a=b"
    assert rest.own_url("https://127.0.0.1:8443") == "https://127.0.0.1:8443"
    assert rest.own_url("https://evil.test\\@127.0.0.1:8443/x") is None
    named = RestClient("VC.Test.Corp", 443, TlsPolicy())
    assert named.own_url("https://vc.test.corp/x") and named.own_url("https://vc.test.corp.:443/x")
    assert named.own_url("https://vc.test.corp:8443/x") is None
    assert RestClient("::1", 443, TlsPolicy()).own_url("https://[0:0::1]/x")


class _Recorder(ThreadingHTTPServer):
    """A local TLS server that records every connection it accepts (before any TLS byte is read)
    and every PUT it receives (path and headers)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.connections, self.puts = 0, []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                recorder.puts.append((self.path, dict(self.headers), self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def get_request(self):
        conn, address = super().get_request()
        self.connections += 1
        return conn, address


def test_an_upload_address_parsers_disagree_on_sends_no_byte_to_the_other_host(tmp_path):
    """urlsplit reads https://127.0.0.1:<evil>\\@127.0.0.1:<vcenter>/... as vCenter's host and port;
    urllib3 ends the authority at the backslash and would connect to <evil>, session id and all.
    Two local TLS servers (one certificate, trusted by the CA file) stand in for vCenter and for
    the other host: the address is refused and not one connection reaches the other server, while
    an honest upload address still gets its PUT, at vCenter."""
    from tkgs_lib.errors import VSphereError
    from tkgs_lib.vsphere.upload import _put

    cert, key = make_self_signed_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with _Recorder(context) as vcenter, _Recorder(context) as evil:
        for server in (vcenter, evil):
            threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            rest = RestClient("127.0.0.1", vcenter.server_port, TlsPolicy(ca_file=str(cert)))
            rest.session.headers["vmware-api-session-id"] = "session-secret"  # as after login
            tricky = f"https://127.0.0.1:{evil.server_port}\\@127.0.0.1:{vcenter.server_port}/cls-data/x/disk.vmdk"
            with pytest.raises(VSphereError, match="holds a backslash.*sent nowhere"):
                _put(rest, tricky, b"disk bytes", "disk.vmdk")
            _put(rest, f"https://127.0.0.1:{vcenter.server_port}/cls-data/x/disk.vmdk", b"disk bytes", "disk.vmdk")
        finally:
            vcenter.shutdown()
            evil.shutdown()
    assert (evil.connections, evil.puts) == (0, [])
    assert [(path, headers["vmware-api-session-id"], body) for path, headers, body in vcenter.puts] == [
        ("/cls-data/x/disk.vmdk", "session-secret", b"disk bytes")]


def test_a_redirect_is_not_followed_so_the_session_id_stays_home(tmp_path):
    """requests drops Authorization on a redirect to another host, but not vmware-api-session-id.
    A TLS server standing in for vCenter answers 307 to another server, which records what reaches it."""
    seen: list[dict] = []

    class Catcher(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append(dict(self.headers))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    class Redirector(Catcher):
        def do_GET(self):  # noqa: N802
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.1:{catcher.server_port}/elsewhere")
            self.end_headers()

    cert, key = make_self_signed_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with ThreadingHTTPServer(("127.0.0.1", 0), Catcher) as catcher, \
            ThreadingHTTPServer(("127.0.0.1", 0), Redirector) as vcenter:
        vcenter.socket = context.wrap_socket(vcenter.socket, server_side=True)
        for server in (catcher, vcenter):
            threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            rest = RestClient("127.0.0.1", vcenter.server_port, TlsPolicy(ca_file=str(cert)))
            rest.session.headers["vmware-api-session-id"] = "session-secret"  # as after login
            with pytest.raises(RestError) as caught:
                rest.get("/rest/com/vmware/cis/tagging/category")
        finally:
            catcher.shutdown()
            vcenter.shutdown()
    assert caught.value.status == 307
    assert seen == []


def test_rest_errors_carry_status_and_vapi_type(vcsim_module):
    body = {"create_spec": {"name": "rest-error-test", "description": "", "cardinality": "SINGLE",
                            "associable_types": ["Datastore"]}}
    with connect(_vcenter(vcsim_module), password=vcsim_module.password) as session:
        category = session.rest.post("/rest/com/vmware/cis/tagging/category", body)
        try:
            with pytest.raises(RestError) as twice:
                session.rest.post("/rest/com/vmware/cis/tagging/category", body)
            assert twice.value.status == 400 and twice.value.error_type.endswith(".already_exists")
            assert "already exists" in str(twice.value)
            with pytest.raises(RestError) as missing:
                session.rest.get("/rest/com/vmware/cis/tagging/category/id:nope")
            assert missing.value.status == 404 and "404 page not found" in str(missing.value)
        finally:
            session.rest.delete(f"/rest/com/vmware/cis/tagging/category/id:{category}")


# --- inventory ---------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value, what, listing", [
    ("datacenter", "Datacenter", "datacenter", "DC0"),
    ("cluster", "Cluster", "cluster", "DC0_C0"),
    ("distributed_switch", "DSwitch", "distributed switch", "DVS0"),
    ("datastores", ["LocalDS_0", "vsanDatastore"], "datastore", "LocalDS_0, LocalDS_1"),
])
def test_missing_inventory_object_is_named_with_what_exists(vcsim_module, field, value, what, listing):
    vcenter = _vcenter(vcsim_module, **{field: value})
    with connect(vcenter, password=vcsim_module.password) as session:
        with pytest.raises(NotFound) as caught:
            Inventory(session, vcenter).resolve()
    message = str(caught.value)
    missing = value[-1] if isinstance(value, list) else value
    assert message.startswith(f"{what} '{missing}'")
    assert f"found: {listing}" in message


def test_inventory_finds_the_site_objects(vcsim_module):
    vcenter = _vcenter(vcsim_module, datastores=["LocalDS_1", "LocalDS_0"])
    with connect(vcenter, password=vcsim_module.password) as session:
        inventory = Inventory(session, vcenter)
        inventory.resolve()
        assert (inventory.datacenter.name, inventory.cluster.name, inventory.switch.name) == ("DC0", "DC0_C0", "DVS0")
        assert [d.name for d in inventory.datastores] == ["LocalDS_1", "LocalDS_0"]
        assert isinstance(inventory.switch, vim.DistributedVirtualSwitch)


def _upload_to_a_vcenter_that_hangs_up(tmp_path, disk_size: int, read: int) -> tuple[str, str]:
    """Stream an OVA's disk to a local TLS server standing in for vCenter, which reads ``read``
    bytes and hangs up without answering; the VSphereError's sentence and the disk's name."""
    from tkgs_lib.errors import VSphereError
    from tkgs_lib.ova import CHUNK_SIZE, Ova
    from tkgs_simulators.ova import build_ova
    from tkgs_lib.vsphere.upload import StreamedBody, _put

    class HangUp(BaseHTTPRequestHandler):
        def do_PUT(self):  # noqa: N802
            left = read
            while left:
                left -= len(self.rfile.read(min(left, 1 << 20)))
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

        def log_message(self, *args):
            pass

    ova = Ova(build_ova(tmp_path, disk_size=disk_size))
    disk = next(m for m in ova.members if m.name.endswith(".vmdk"))
    cert, key = make_self_signed_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with ThreadingHTTPServer(("127.0.0.1", 0), HangUp) as vcenter:
        vcenter.socket = context.wrap_socket(vcenter.socket, server_side=True)
        threading.Thread(target=vcenter.serve_forever, daemon=True).start()
        try:
            rest = RestClient("127.0.0.1", vcenter.server_port, TlsPolicy(ca_file=str(cert)))
            with ova.open(disk.name, CHUNK_SIZE) as reader, pytest.raises(VSphereError) as caught:
                _put(rest, f"https://127.0.0.1:{vcenter.server_port}/cls-data/x/{disk.name}",
                     StreamedBody(reader, lambda n: None), disk.name)
        finally:
            vcenter.shutdown()
    return str(caught.value), disk.name


def test_a_connection_lost_mid_upload_says_how_far_it_got(tmp_path):
    """vCenter reads 1 MiB of a 64 MiB disk and hangs up (as one that restarts or fills its disk
    does): one sentence says which file, how far it got and what to check, with no traceback of the
    socket layers. (64 MiB: more than loopback's socket buffers can swallow before the hang-up.)"""
    message, disk = _upload_to_a_vcenter_that_hangs_up(tmp_path, 64 << 20, 1 << 20)
    assert message.startswith("vCenter closed the connection after ") and f"of 64 MB of {disk}" in message
    sent_mb = int(message.split("after ")[1].split(" MB")[0])
    assert 1 <= sent_mb < 64, message  # at least what the server read, never the whole file
    assert "is vCenter up" in message and "Traceback" not in message and "\n" not in message


def test_a_connection_lost_after_the_whole_file_says_it_was_all_sent(tmp_path):
    """Read whole, then no answer: not "4 MB of 4 MB" as if cut short, but that all of it was sent."""
    message, disk = _upload_to_a_vcenter_that_hangs_up(tmp_path, 4 << 20, 4 << 20)
    assert message.startswith(f"vCenter closed the connection after all 4 MB of {disk} was sent, before it answered ("), message
    assert "is vCenter up" in message and "Traceback" not in message and "\n" not in message


def test_a_vcenter_that_is_down_is_named_before_any_byte(tmp_path):
    from tkgs_lib.errors import VSphereError
    from tkgs_lib.vsphere.upload import StreamedBody, _put

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rest = RestClient("127.0.0.1", port, TlsPolicy(ca_file=str(make_self_signed_cert(tmp_path)[0])))

    class Reader:
        def __len__(self):
            return 10

        def __iter__(self):
            yield b"0123456789"

    with pytest.raises(VSphereError, match="refused the connection for disk.vmdk before anything was sent"):
        _put(rest, f"https://127.0.0.1:{port}/cls-data/x/disk.vmdk", StreamedBody(Reader(), lambda n: None),
             "disk.vmdk")
