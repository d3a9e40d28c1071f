"""The vCenter simulator harness: real SOAP and REST clients, verified TLS, real credentials."""

from __future__ import annotations

import hashlib
import ssl

import pytest
import requests
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from tkgs_simulators.vcsim import build_vcsim
from tkgs_lib.site.patterns import normalize_thumbprint

pytestmark = pytest.mark.vcsim


def _connect(sim, password=None):
    context = ssl.create_default_context(cafile=str(sim.ca_file))
    return SmartConnect(host=sim.host, port=sim.port, user=sim.username,
                        pwd=sim.password if password is None else password, sslContext=context)


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise override verify=
    return session


def test_soap_login_reports_vsphere_7(vcsim):
    si = _connect(vcsim)
    try:
        about = si.content.about
        assert about.version.startswith("7."), about.version
        assert about.apiType == "VirtualCenter"
    finally:
        Disconnect(si)


def test_soap_login_with_wrong_password_is_refused(vcsim):
    with pytest.raises(vim.fault.InvalidLogin):
        _connect(vcsim, password=vcsim.password + "-wrong")


def test_inventory_has_two_datastores(vcsim):
    si = _connect(vcsim)
    try:
        view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.Datastore], True)
        names = sorted(ds.name for ds in view.view)
        view.Destroy()
    finally:
        Disconnect(si)
    assert names[:2] == ["LocalDS_0", "LocalDS_1"]


def test_rest_session_login_over_verified_tls(vcsim):
    base = f"https://{vcsim.host}:{vcsim.port}/rest/com/vmware/cis/session"
    with _session() as http:
        response = http.post(base, auth=(vcsim.username, vcsim.password), verify=str(vcsim.ca_file))
        assert response.status_code == 200, response.text
        token = response.json()["value"]
        who = http.post(base, params={"~action": "get"}, verify=str(vcsim.ca_file),
                        headers={"vmware-api-session-id": token})
        assert who.status_code == 200, who.text
        assert who.json()["value"]["user"] == vcsim.username
        # This simulator accepts any non-empty REST password, but not an empty one.
        assert http.post(base, auth=(vcsim.username, ""), verify=str(vcsim.ca_file)).status_code == 401


def test_system_ca_store_does_not_trust_the_simulator(vcsim):
    with _session() as http, pytest.raises(requests.exceptions.SSLError):
        http.post(f"https://{vcsim.host}:{vcsim.port}/rest/com/vmware/cis/session",
                  auth=(vcsim.username, vcsim.password), verify=True)
    with pytest.raises(ssl.SSLCertVerificationError):
        SmartConnect(host=vcsim.host, port=vcsim.port, user=vcsim.username, pwd=vcsim.password,
                     sslContext=ssl.create_default_context())


def test_thumbprint_matches_the_served_certificate(vcsim):
    pem = ssl.get_server_certificate((vcsim.host, vcsim.port))
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
    assert vcsim.thumbprint == normalize_thumbprint(digest)  # AA:BB:..., as vcenter.thumbprint is written


def test_cached_binary_is_reused(vcsim_binary):
    before = vcsim_binary.stat()
    again = build_vcsim()
    assert again == vcsim_binary
    after = again.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_the_simulator_command_cleans_up_on_every_way_out(vcsim_binary, tmp_path, signame):
    """`python -m tkgs_simulators.vcsim` once left its key file behind when stopped with SIGTERM."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    proc = subprocess.Popen([sys.executable, "-m", "tkgs_simulators.vcsim"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        lines = []
        while not any(line.strip().startswith("CA file:") for line in lines):
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(line)
        ca_file = Path(next(line for line in lines if "CA file:" in line).split(":", 1)[1].strip())
        workdir = ca_file.parent
        assert (workdir / "vcsim-key.pem").exists()
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert children, "the simulator process is not running"
        proc.send_signal(getattr(signal, signame))
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not workdir.exists(), f"{workdir} was left behind"
    time.sleep(0.2)
    assert all(not Path(f"/proc/{pid}").exists() for pid in children), "the vcsim process outlived its launcher"
