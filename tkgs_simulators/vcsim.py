"""VMware's vCenter simulator (govmomi ``vcsim``), built from Debian's govmomi source.

:func:`build_vcsim` compiles the bundled Go launcher once and caches the binary;
:class:`VCenterSimulator` runs it on a loopback port with its own 2048-bit
certificate and real credentials, so clients exercise verified TLS and a login
that can fail. ``python -m tkgs_simulators.vcsim`` starts one for a person.

govmomi implements no Workload Management enable, so the simulator's
``/api/vcenter/namespace-management/`` paths are proxied (by the launcher, over TLS) to a stand-in
of ours run in a thread of this process (:mod:`tkgs_simulators.namespace_management`);
:class:`VCenterSimulator` exposes its faults and the enable requests it accepted to the tests.

govmomi's model has a cluster's DRS on with no automation level and vSphere HA off, which no
Supervisor takes; once started, every cluster is set as an administrator readies it for vSphere with
Tanzu, through the simulator's own API (:meth:`VCenterSimulator.configure_cluster`): DRS fully
automated, vSphere HA on.
"""

from __future__ import annotations

import atexit
import datetime
import fcntl
import hashlib
import ipaddress
import os
import secrets
import select
import shutil
import ssl
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from typing import TYPE_CHECKING

from tkgs_lib.errors import SimulatorUnavailable

from .namespace_management.settings import StandInSettings

if TYPE_CHECKING:  # imported when a simulator starts: VMware's bindings take a while to load
    from .namespace_management.server import EnableRequest, NamespaceManagementStandIn

LAUNCHER = Path(__file__).with_name("vcsim") / "launcher.go"
GOPATH = Path("/usr/share/gocode")
GOVMOMI = GOPATH / "src/github.com/vmware/govmomi"
INSTALL_HINT = "apt-get install golang-go golang-github-vmware-govmomi-dev"
READY = "VCSIM_READY "

__all__ = ["build_vcsim", "make_self_signed_cert", "VCenterSimulator", "default_cache_dir"]


def default_cache_dir() -> Path:
    from tkgs_lib.paths import cache_dir

    return cache_dir() / "vcsim"


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _go_env(cache_dir: Path) -> dict[str, str]:
    # GOPATH mode against Debian's sources: no module download, no network.
    return {**os.environ, "GO111MODULE": "off", "GOPATH": str(GOPATH),
            "GOCACHE": str(cache_dir / "gocache"), "GOFLAGS": ""}


def build_vcsim(cache_dir: Path | None = None) -> Path:
    """Return the simulator binary, compiling it first if this launcher/Go pair has none cached."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    go = shutil.which("go")
    if go is None:
        raise SimulatorUnavailable(f"go is not installed: {INSTALL_HINT}")
    if not (GOVMOMI / "simulator").is_dir():
        raise SimulatorUnavailable(f"the govmomi sources are missing from {GOVMOMI}: {INSTALL_HINT}")
    env = _go_env(cache_dir)
    version = subprocess.run([go, "version"], capture_output=True, text=True, env=env).stdout
    key = hashlib.sha256(LAUNCHER.read_bytes() + version.encode()).hexdigest()[:16]
    out_dir = cache_dir / key
    binary = out_dir / "vcsim"
    if binary.exists():
        return binary
    out_dir.mkdir(parents=True, exist_ok=True)
    # Parallel test workers: one builds, the others wait on the lock and then reuse it.
    with open(out_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():
            return binary
        tmp = out_dir / f".vcsim.{os.getpid()}.tmp"
        try:
            result = subprocess.run([go, "build", "-o", str(tmp), str(LAUNCHER)], cwd=out_dir,
                                    env=env, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired as exc:
            raise SimulatorUnavailable("building the vCenter simulator timed out") from exc
        if result.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise SimulatorUnavailable(
                f"building the vCenter simulator failed ({INSTALL_HINT}?):\n{_tail(result.stderr)}")
        os.replace(tmp, binary)
    return binary


def make_self_signed_cert(dir: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """Write a fresh self-signed 2048-bit certificate for ``host`` (and localhost); it is its own CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tkgs-runbook vcsim")])
    try:
        host_san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        host_san = x509.DNSName(host)
    now = datetime.datetime.now(datetime.timezone.utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([host_san, x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=True,
                                     content_commitment=False, data_encipherment=False,
                                     key_agreement=False, crl_sign=False, encipher_only=False,
                                     decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = dir / "vcsim-cert.pem", dir / "vcsim-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


_running: set[VCenterSimulator] = set()


@atexit.register
def _stop_all() -> None:
    for sim in list(_running):
        sim.stop()


class VCenterSimulator:
    """A vCenter simulator on 127.0.0.1 with a fresh inventory (DC0, DC0_C0, LocalDS_0..N-1).

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    host = "127.0.0.1"

    def __init__(self, *, username: str = "administrator@vsphere.local", password: str | None = None,
                 datastores: int = 2, workdir: Path | None = None, binary: Path | None = None,
                 start_timeout: float = 60.0, supervisor: StandInSettings | None = None,
                 vcenter_version: str = "7.0.3") -> None:
        """``supervisor``: how the Workload Management stand-in plays the Supervisor (its times, the
        namespace it reaches load balancers from); :attr:`supervisor` may be changed while running.
        ``vcenter_version``: the vCenter 7.0 update it reports (7.0.1, 7.0.2 or 7.0.3: its about and API
        version, which say what the namespace-management stand-in serves)."""
        self.vcenter_version = vcenter_version
        self.supervisor = supervisor or StandInSettings()
        self._stand_in: NamespaceManagementStandIn | None = None
        self.username = username
        self.password = password or secrets.token_urlsafe(16)
        self.datastores = datastores
        self.workdir = Path(workdir) if workdir else None
        self.binary = Path(binary) if binary else None
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.url: str | None = None
        self.ca_file: Path | None = None
        self.thumbprint: str | None = None
        self._proc: subprocess.Popen | None = None
        self._own_workdir = False

    def __repr__(self) -> str:  # never the password
        return f"<VCenterSimulator {self.url or 'not started'} user={self.username}>"

    def __enter__(self) -> VCenterSimulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> VCenterSimulator:
        if self._proc is not None:
            return self
        binary = self.binary or build_vcsim()
        if self.workdir is None:
            self.workdir, self._own_workdir = Path(tempfile.mkdtemp(prefix="vcsim-")), True
        self.workdir.mkdir(parents=True, exist_ok=True)
        cert, key = make_self_signed_cert(self.workdir, self.host)
        der = ssl.PEM_cert_to_DER_cert(cert.read_text())
        self.ca_file, self.thumbprint = cert, ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())  # AA:BB:...
        stderr_path = self.workdir / "vcsim.log"
        from .namespace_management.server import NamespaceManagementStandIn

        # The stand-in listens first: the launcher is told where to proxy namespace-management to.
        self._stand_in = NamespaceManagementStandIn(cert, key, self.supervisor)
        upstream = self._stand_in.start()
        # The password goes through the environment, not argv (visible in ps); the datastores'
        # backing folders go under workdir via TMPDIR; stdin stays open so the child exits if we die.
        env = {**os.environ, "VCSIM_PASSWORD": self.password, "TMPDIR": str(self.workdir)}
        argv = [str(binary), "-listen", f"{self.host}:0", "-username", self.username,
                "-cert", str(cert), "-key", str(key), "-datastores", str(self.datastores),
                "-namespace-management-upstream", upstream, "-vcenter-version", self.vcenter_version, "-exit-on-eof"]
        try:
            with open(stderr_path, "wb") as stderr:
                self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                              stderr=stderr, env=env)
        except OSError as exc:
            self._stop_stand_in()
            self._cleanup_workdir()
            raise SimulatorUnavailable(f"the vCenter simulator could not be started: {exc}") from exc
        _running.add(self)
        line = self._read_ready_line()
        if line is None:
            code = self._proc.poll()
            self.stop(keep_workdir=True)
            log = _tail(stderr_path.read_text(errors="replace"))
            how = f"exited with code {code}" if code is not None else \
                f"was not ready within {self.start_timeout:.0f} s"
            self._cleanup_workdir()
            raise SimulatorUnavailable(f"the vCenter simulator {how}" + (f":\n{log}" if log else "."))
        self.url = line[len(READY):].strip()
        self.port = int(self.url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        from .namespace_management.inventory import SimulatorInventory

        self._stand_in.attach(SimulatorInventory(self.host, self.port, str(self.ca_file), self.username,
                                                 self.password))
        try:
            with self.soap() as si:
                for cluster in _every(si, "ClusterComputeResource"):
                    _reconfigure(cluster, drs_enabled=True, drs_behavior="fullyAutomated", ha_enabled=True)
        except Exception as exc:  # noqa: BLE001 (whatever it was, the simulator is of no use)
            self.stop()
            raise SimulatorUnavailable(f"the vCenter simulator's clusters could not be readied for Workload "
                                       f"Management: {type(exc).__name__}: {exc}") from exc
        return self

    # --- the inventory, as an administrator changes it (SOAP) ------------------------------------

    @contextmanager
    def soap(self):
        """A SOAP session of the simulator's administrator (pyVmomi's ServiceInstance), logged out after."""
        from pyVim.connect import Disconnect, SmartConnect

        si = SmartConnect(host=self.host, port=self.port, user=self.username, pwd=self.password,
                          sslContext=ssl.create_default_context(cafile=str(self.ca_file)))
        try:
            yield si
        finally:
            Disconnect(si)

    def inventory(self) -> dict[str, list]:
        """Everything the simulator holds that a run can make, as sorted lists: each managed entity (kind,
        id, name), each tag category and tag (with what it is attached to), content library and item, VM
        storage policy, each cluster's Supervisor and each vSphere Namespace (the stand-in's; a namespace
        holds what the Supervisor runs in it, its Tanzu Kubernetes clusters). Two snapshots compare equal
        when nothing was made or left behind between them."""
        import requests
        from pyVmomi import SoapStubAdapter, pbm, vim

        from tkgs_lib.https import basic_auth

        with self.soap() as si:
            content = si.content
            view = content.viewManager.CreateContainerView(content.rootFolder, [vim.ManagedEntity], True)
            try:
                entities = sorted((type(e).__name__, e._moId, e.name) for e in view.view)
            finally:
                view.Destroy()
            cookie = si._stub.GetSessionId()
            stub = SoapStubAdapter(host=self.host, port=self.port, path="/pbm", version="pbm.version.version11",
                                   sslContext=ssl.create_default_context(cafile=str(self.ca_file)), sessionId=cookie,
                                   requestContext={"vcSessionCookie": cookie})
            manager = pbm.ServiceInstance("ServiceInstance", stub).RetrieveContent().profileManager
            ids = manager.PbmQueryProfile(resourceType=pbm.profile.ResourceType(resourceType="STORAGE"),
                                          profileCategory="REQUIREMENT")
            policies = sorted((p.profileId.uniqueId, p.name) for p in (manager.PbmRetrieveContent(ids) if ids else ()))
        rest = requests.Session()
        rest.verify, rest.trust_env = str(self.ca_file), False
        base = f"https://{self.host}:{self.port}/rest/com/vmware"
        rest.headers["vmware-api-session-id"] = rest.post(f"{base}/cis/session", headers=basic_auth(
            self.username, self.password)).json()["value"]  # UTF-8, as vCenter reads it (a euro sign in a password)

        def value(method: str, path: str, **kwargs):
            answer = rest.request(method, f"{base}/{path}", **kwargs)
            answer.raise_for_status()
            return answer.json().get("value") if answer.content else None

        try:
            categories = sorted((c, value("GET", f"cis/tagging/category/id:{c}")["name"])
                                for c in value("GET", "cis/tagging/category") or ())
            tags = sorted((t, value("GET", f"cis/tagging/tag/id:{t}")["name"], tuple(sorted(
                (o["type"], o["id"]) for o in value("POST", f"cis/tagging/tag-association/id:{t}",
                                                    params={"~action": "list-attached-objects"}) or ())))
                          for t in value("GET", "cis/tagging/tag") or ())
            libraries = sorted((lib, value("GET", f"content/library/id:{lib}")["name"],
                                tuple(sorted(value("GET", "content/library/item", params={"library_id": lib}) or ())))
                               for lib in value("GET", "content/library") or ())
        finally:
            rest.delete(f"{base}/cis/session")
            rest.close()
        stand_in = self._stand_in
        supervisors = stand_in.enabled_clusters() if stand_in is not None else []
        namespaces = stand_in.namespaces.held() if stand_in is not None else []
        return {"entities": entities, "tag categories": categories, "tags": tags, "libraries": libraries,
                "storage policies": policies, "supervisors": supervisors, "namespaces": namespaces}

    def configure_cluster(self, name: str = "DC0_C0", *, drs_enabled: bool | None = None,
                          drs_behavior: str | None = None, ha_enabled: bool | None = None) -> None:
        """Set cluster ``name``'s DRS (on or off, its default automation level: fullyAutomated,
        partiallyAutomated, manual) and vSphere HA as the vSphere Client does:
        ``ReconfigureComputeResource_Task`` with a ``ClusterConfigSpecEx``; a value left None is kept."""
        with self.soap() as si:
            [cluster] = [c for c in _every(si, "ClusterComputeResource") if c.name == name]
            _reconfigure(cluster, drs_enabled=drs_enabled, drs_behavior=drs_behavior, ha_enabled=ha_enabled)

    # --- Workload Management, as the stand-in plays it (for the tests) ------------------------------

    @property
    def enable_requests(self) -> list[EnableRequest]:
        """Every Workload Management enable the simulator accepted, in order: the cluster, the body
        as sent and the EnableSpec decoded from it."""
        return list(self._stand_in.enable_requests) if self._stand_in else []

    @property
    def load_balancer_updates(self) -> list:
        """Every load-balancer update (PATCH .../load-balancers/{id}) the simulator accepted, in order."""
        return list(self._stand_in.load_balancer_updates) if self._stand_in else []

    def refuse_next_load_balancer_update(self, message: str) -> None:
        """The next load-balancer update is refused (INVALID_ARGUMENT with ``message``), nothing changed."""
        self._need_stand_in().refuse_next_update(message)

    def lose_next_load_balancer_update(self) -> None:
        """The next load-balancer update is accepted (and listed) but never reaches the Supervisor."""
        self._need_stand_in().lose_next_update()

    def inject_enable_error(self, message: str, *, recover_after: float | None = None,
                            cluster: str | None = None) -> None:
        """The next enable (of ``cluster``, or any) ends in config_status ERROR with ``message``
        once its checks pass: for good, or for ``recover_after`` seconds (and until a read has seen it)
        and then RUNNING."""
        from .namespace_management.supervisor import Fault

        kind = "error" if recover_after is None else "transient"
        self._need_stand_in().inject(Fault(kind, message, recover_after or 0.0, cluster))

    def inject_enable_stall(self, *, cluster: str | None = None) -> None:
        """The next enable (of ``cluster``, or any) stays CONFIGURING until :meth:`release_enable_stall`."""
        from .namespace_management.supervisor import Fault

        self._need_stand_in().inject(Fault("stuck", cluster=cluster))

    def release_enable_stall(self, cluster: str) -> None:
        """The stalled enable of ``cluster`` goes on configuring, as a good one does (a real enable that
        outlasted a wait)."""
        supervisor = self._need_stand_in().supervisor(cluster)
        if supervisor is None:
            raise SimulatorUnavailable(f"cluster {cluster} has no Supervisor whose enable could be stalled.")
        supervisor.release()

    def control_plane(self, cluster: str):
        """The Supervisor's control plane the stand-in plays for ``cluster`` (a
        :class:`~tkgs_simulators.supervisor.SupervisorControlPlane`: its servers, and
        ``stop_server``/``start_server`` to take one down), or None when it plays none (no
        Supervisor, not yet deployed, or no lab given in :attr:`supervisor`)."""
        supervisor = self._need_stand_in().supervisor(cluster)
        return supervisor.control_plane if supervisor is not None else None

    def _need_stand_in(self) -> NamespaceManagementStandIn:
        if self._stand_in is None:
            raise SimulatorUnavailable("the vCenter simulator is not running; start it first.")
        return self._stand_in

    def stop_supervisors(self) -> None:
        """Stop the namespace-management stand-in and every Supervisor it plays, before what they
        reach (an appliance) goes: its controller would otherwise log the appliance vanishing."""
        self._stop_stand_in()

    def _stop_stand_in(self) -> None:
        stand_in, self._stand_in = self._stand_in, None
        if stand_in is not None:
            stand_in.stop()

    def _read_ready_line(self) -> str | None:
        assert self._proc is not None and self._proc.stdout is not None
        fd, buf = self._proc.stdout.fileno(), b""
        deadline = time.monotonic() + self.start_timeout
        while (left := deadline - time.monotonic()) > 0:
            if select.select([fd], [], [], min(left, 0.5))[0]:
                chunk = os.read(fd, 4096)
                if not chunk:  # EOF: the process died
                    return None
                buf += chunk
                for line in buf.decode(errors="replace").splitlines():
                    if line.startswith(READY):
                        return line
            elif self._proc.poll() is not None:
                return None
        return None

    def crash(self) -> None:
        """Kill the simulator at once (SIGKILL), as a vCenter that dies mid-request would; its
        connections drop. :meth:`stop` still cleans up after it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def stop(self, keep_workdir: bool = False) -> None:
        proc, self._proc = self._proc, None
        _running.discard(self)
        self._stop_stand_in()
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe:
                    pipe.close()
        if not keep_workdir:
            self._cleanup_workdir()

    def _cleanup_workdir(self) -> None:
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir, self._own_workdir = None, False


def _every(si, kind: str) -> list:
    """Every managed object of ``kind`` (a vim type's name) in the simulator's inventory."""
    from pyVmomi import vim

    content = si.content
    view = content.viewManager.CreateContainerView(content.rootFolder, [getattr(vim, kind)], True)
    try:
        return list(view.view)
    finally:
        view.Destroy()


def _reconfigure(cluster, *, drs_enabled, drs_behavior, ha_enabled) -> None:
    from pyVmomi import vim

    spec = vim.cluster.ConfigSpecEx(
        drsConfig=vim.cluster.DrsConfigInfo(enabled=drs_enabled, defaultVmBehavior=drs_behavior),
        dasConfig=vim.cluster.DasConfigInfo(enabled=ha_enabled))
    task = cluster.ReconfigureComputeResource_Task(spec=spec, modify=True)
    while task.info.state not in ("success", "error"):
        time.sleep(0.02)
    if task.info.state == "error":
        raise SimulatorUnavailable(f"the simulator refused to reconfigure cluster {cluster.name}: {task.info.error}")


def _main() -> None:
    import signal

    def stop(signum, _frame):  # SIGTERM and SIGHUP end it like Ctrl-C: the with-block cleans up
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    try:
        with VCenterSimulator() as sim:
            print(f"vCenter simulator at {sim.url}\n  user:       {sim.username}\n"
                  f"  password:   {sim.password}\n  CA file:    {sim.ca_file}\n"
                  f"  thumbprint: {sim.thumbprint}\nCtrl-C stops it.", flush=True)
            while True:
                signal.pause()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    _main()
