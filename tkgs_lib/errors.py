"""The one exception hierarchy of tkgs_lib.

Every error a person can act on derives from :class:`TkgsError` and carries the
sentence that person should read; the notebooks and the command line print that
sentence, never a traceback.

    TkgsError
    ├── SiteError            the site file cannot be read or holds a bad value
    ├── ValidationFailed     the plan has error findings (carries them)
    ├── VSphereError         talking to vCenter failed (a vSphere fault, as one sentence)
    │   ├── ConnectionFailed     TLS, credentials, unreachable host
    │   ├── NotFound             a named inventory object does not exist
    │   ├── VSphereFault         vCenter answered a call with a fault (carries it)
    │   ├── RestError            vCenter's REST API answered with an error (carries the status)
    │   └── SupervisorFailed     Workload Management did not come up (a lasting ERROR, a timeout)
    ├── ApplianceError       talking to the HAProxy appliance failed
    │   ├── SessionLost          the SSH session was lost while a command ran (it may have run, in part)
    │   ├── LoginRefused         the appliance refused the SSH login (the password or key)
    │   ├── CommandFailed        a command on the appliance failed (carries its result)
    │   └── VerificationFailed   the appliance does not hold what the plan says (carries the checks)
    ├── KubernetesError      talking to a Kubernetes API (the Supervisor's, a cluster's) failed
    │   └── ClusterFailed        a Tanzu Kubernetes cluster or its Service did not come up (what it waits for)
    ├── ConflictError        what exists contradicts the site; nothing was changed
    ├── OvaError             an OVA cannot be read
    │   └── ManifestMismatch     an OVA's files do not match its manifest (.mf)
    ├── SimulatorUnavailable a bundled simulator cannot be built or started
    └── StageFailed          a runbook stage (notebook) failed
        └── StageInterrupted     ... because it was interrupted (Ctrl-C, SIGTERM, SIGHUP)

Low-level faults are translated into this tree at one boundary per transport: every SOAP call's
fault or lost connection at the stub (:func:`tkgs_lib.vsphere.tasks.guard_stub`), a REST request's
in :mod:`tkgs_lib.vsphere.rest`, the TLS check before login in :mod:`tkgs_lib.vsphere.tls`, an SSH
session's in :mod:`tkgs_lib.appliance.ssh`, a command's exit status in
:mod:`tkgs_lib.appliance.commands`, a Kubernetes request's in :mod:`tkgs_lib.kubernetes.session`. (A
pinned certificate that does not match is raised inside the TLS handshake as an ``ssl`` error, where it
must stay one, and translated where the handshake is made.)
"""

from __future__ import annotations

def innermost_cause(exc: BaseException) -> BaseException:
    """The exception at the bottom of ``exc``'s chain: the socket or TLS error under the wrappers of
    requests, urllib3 and http.client."""
    while (inner := exc.__cause__ or exc.__context__) is not None and inner is not exc:
        exc = inner
    return exc


class TkgsError(Exception):
    """Base of every error tkgs_lib raises on purpose.

    ``effect``: what a read made after the failure found of the state it left (the VM a lost deploy
    made, removed again; the unit a repair rolled back, active again), when one was made. What was
    sent and what came back is the ledger's to say (:mod:`tkgs_lib.effects`), never this."""

    effect: str = ""

    def __init__(self, message: str, *, effect: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.effect = effect

    def __str__(self) -> str:
        return self.message

    def reworded(self, message: str) -> "TkgsError":
        """A copy saying ``message`` instead, of the same class and with the same fields (a
        RestError's status, a ManifestMismatch's digests): for adding where the error happened."""
        import copy

        other = copy.copy(self)
        other.message = message
        other.args = (message,)
        return other

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback: a user's mistake reads as one sentence
        # in the notebook. The cell still fails, so papermill stops and reports it.
        return [f"{type(self).__name__}: {self.message}"]


class SiteError(TkgsError):
    """The site file is missing, unreadable, not YAML, or holds a bad value."""


class ValidationFailed(TkgsError):
    """The site's plan has at least one error finding."""

    def __init__(self, message: str, findings=()) -> None:
        super().__init__(message)
        self.findings = list(findings)


class VSphereError(TkgsError):
    """Something went wrong talking to vCenter."""


class ConnectionFailed(VSphereError):
    """vCenter could not be reached, its certificate was not trusted, or login failed."""


class NotFound(VSphereError):
    """A named inventory object (datacenter, cluster, switch, datastore...) does not exist."""


class VSphereFault(VSphereError):
    """vCenter answered a SOAP call with a fault; ``fault`` is pyVmomi's (vim.fault.DuplicateName...)."""

    def __init__(self, message: str, fault=None) -> None:
        super().__init__(message)
        self.fault = fault


class RestError(VSphereError):
    """vCenter's REST API answered with an error; ``status`` is the HTTP status, ``error_type``
    vAPI's error type (e.g. com.vmware.vapi.std.errors.not_found) when it said one."""

    def __init__(self, message: str, status: int = 0, error_type: str = "") -> None:
        super().__init__(message)
        self.status, self.error_type = status, error_type


class SupervisorFailed(VSphereError):
    """Workload Management was asked for and did not come up: an ERROR that lasted, a timeout, or
    someone disabling it meanwhile. The message carries vCenter's own messages and what to check."""


class SupervisorStillConfiguring(SupervisorFailed):
    """The wait's timeout passed while vCenter was still configuring the Supervisor (CONFIGURING, or
    RUNNING with Kubernetes not READY yet), with no ERROR: vCenter goes on by itself, and a later read
    may find it running."""


class ApplianceError(TkgsError):
    """Something went wrong talking to the HAProxy appliance (SSH, its Data Plane API)."""


class LoginRefused(ApplianceError):
    """The appliance refused an SSH login: the password or the key was judged, and said no."""


class SessionLost(ApplianceError):
    """The SSH session to the appliance was lost while ``command`` ran: it may have run, in part."""

    def __init__(self, message: str, command: str = "") -> None:
        super().__init__(message)
        self.command = command


class LoginRefused(ApplianceError):
    """The appliance refused the SSH login with the password or key given (a password rotated since, say)."""


class CommandFailed(ApplianceError):
    """A command on the appliance failed; ``result`` holds its exit status and output."""

    def __init__(self, message: str, result=None) -> None:
        super().__init__(message)
        self.result = result


class VerificationFailed(ApplianceError):
    """At least one check of the appliance failed; ``checks`` holds the failed ones."""

    def __init__(self, message: str, checks=()) -> None:
        super().__init__(message)
        self.checks = list(checks)


class KubernetesError(TkgsError):
    """A Kubernetes API (the Supervisor's, a Tanzu Kubernetes cluster's) refused a request, or could not be
    reached or logged in to; ``status`` is the HTTP status when one came, ``reason`` Kubernetes' (NotFound...)."""

    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


class ClusterFailed(KubernetesError):
    """A Tanzu Kubernetes cluster, or its LoadBalancer Service, did not come up within its time; the message
    names the condition it waits on and what to check."""


class ConflictError(TkgsError):
    """What exists contradicts the site; the stage stopped before changing anything."""


class OvaError(TkgsError):
    """An OVA cannot be read: not a tar archive, no OVF descriptor, an unreadable manifest."""


class ManifestMismatch(OvaError):
    """A file of an OVA does not match its manifest: wrong digest, missing, or not listed.

    ``file``, ``expected`` and ``actual`` name the file and both digests (empty when not known).
    """

    def __init__(self, message: str, file: str = "", expected: str = "", actual: str = "") -> None:
        super().__init__(message)
        self.file, self.expected, self.actual = file, expected, actual


class SimulatorUnavailable(TkgsError):
    """A bundled simulator (vCenter's, the appliance's) cannot be built or started on this machine."""


class StageFailed(TkgsError):
    """A runbook stage failed; the message names the stage and its notebook. ``result``: the runner's
    StageResult of it (its record, its seconds, the exception its cell raised, what it changed), when
    its notebook ran."""

    def __init__(self, message: str, result=None) -> None:
        super().__init__(message)
        self.result = result


class StageInterrupted(StageFailed):
    """A runbook stage was interrupted; the message says which, and what it changed. ``failed``: it had
    failed on its own before the signal came (the signal came while its record was kept)."""

    def __init__(self, message: str, result=None, failed: bool = False) -> None:
        super().__init__(message, result)
        self.failed = failed
