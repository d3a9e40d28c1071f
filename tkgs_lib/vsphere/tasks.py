"""vSphere's faults and tasks, turned into outcomes and sentences in one place.

:func:`guard_stub` is the one boundary of the SOAP transport, as httpx maps its transport's errors
in one place: installed on each session's stub (vCenter's and SPBM's), it turns every call's and
every property read's failure into the error tree, reads included: a vSphere fault
(``vmodl.MethodFault``) becomes a :class:`VSphereFault` sentence naming the call; a connection lost,
reset or timed out becomes :class:`ConnectionFailed`, and for a call that changes something its
ledger entry (:mod:`tkgs_lib.effects`) stays unknown: vCenter may have carried it out (a rerun without
apply shows whether). :func:`vsphere_call` words such an error after what was being done, and
:func:`wait_for_task` waits for a task the same way.
"""

from __future__ import annotations

import contextlib
import re
from typing import Callable, Iterator, Optional

import http.client
import ssl

from pyVmomi import vim, vmodl

from .. import effects
from ..errors import ConnectionFailed, VSphereError, VSphereFault

__all__ = ["fault_sentence", "vsphere_call", "wait_for_task", "guard_stub"]

# Calls that only read: their loss changes nothing. Everything else may have changed vCenter.
_READS = ("Retrieve", "ContinueRetrieve", "Fetch", "Find", "Query", "Current", "CreateContainerView", "CreateListView",
          "DestroyView", "Browse", "Search", "Check", "Validate", "Logout", "PbmQuery", "PbmRetrieve",
          "PbmFetch", "PbmCheck")
_TRANSPORT = (OSError, EOFError, http.client.HTTPException, ssl.SSLError)


def guard_stub(stub, where: str):
    """Translate every failure of ``stub``'s calls and property reads into the error tree (see above);
    ``where``: what the stub talks to, for the sentences ("vCenter", "vCenter's SPBM")."""
    invoke_method, invoke_accessor = stub.InvokeMethod, stub.InvokeAccessor

    def translated(call, name: str, changes: bool):
        ledger = effects.current()
        entry = ledger.enter(where, name) if changes else None  # on the ledger before it leaves
        try:
            answer = call()
        except vmodl.MethodFault as fault:
            error = VSphereFault(f"{where} answered {name} with a fault: {fault_sentence(fault)}", fault)
            if entry is not None:
                ledger.close(entry, effects.REFUSED, error.message)
            raise error from None
        except _TRANSPORT as exc:
            error = ConnectionFailed(f"the connection to {where} was lost before it answered {name} "
                                     f"({type(exc).__name__}{': ' + str(exc) if str(exc) else ''})")
            if entry is not None:
                ledger.close(entry, effects.UNKNOWN, error.message)
            raise error from None
        if entry is not None:
            ledger.close(entry, effects.DONE)
        return answer

    def method(mo, info, args):
        return translated(lambda: invoke_method(mo, info, args), info.wsdlName,
                          not info.wsdlName.startswith(_READS))

    def accessor(mo, info):
        return translated(lambda: invoke_accessor(mo, info), f"a read of {info.name}", False)

    stub.InvokeMethod, stub.InvokeAccessor = method, accessor
    return stub


# Faults whose own message is empty or a Go type name (the simulator's "*types.DuplicateName"),
# worded from their fields as vCenter's UI would, with what to do next.
_FAULT_WORDS: dict[str, Callable[[object], str]] = {
    "DuplicateName": lambda f: (f"vCenter already has an object named '{getattr(f, 'name', '') or '?'}': someone "
                                f"made it after this run read vCenter; rerun without apply to see it"),
    "AlreadyExists": lambda f: (f"'{getattr(f, 'name', '') or 'it'}' already exists in vCenter; rerun without "
                                f"apply to see it"),
    "ManagedObjectNotFound": lambda f: "the object is gone from vCenter (deleted after this run read it); rerun",
    "NoPermission": lambda f: (f"the vCenter user lacks the privilege {getattr(f, 'privilegeId', '') or '?'}; "
                               f"grant it, or run as a user who has it"),
    "InvalidName": lambda f: f"vCenter does not accept the name '{getattr(f, 'name', '') or '?'}'",
    "InvalidPowerState": lambda f: (f"the VM is {getattr(f, 'existingState', '') or 'in another power state'}, "
                                    f"not {getattr(f, 'requestedState', '') or 'as required'}"),
}
_GO_TYPE = re.compile(r"^\*?types\.\w+$")


def fault_sentence(fault: BaseException) -> str:
    """A vSphere fault as one sentence: its message, else its kind, with what vCenter added."""
    kind = type(fault).__name__.rsplit(".", 1)[-1]
    message = (getattr(fault, "msg", "") or "").strip()
    if not message or _GO_TYPE.match(message):
        # localizedMessage and faultMessage carry the words vCenter shows in its own UI.
        message = (getattr(fault, "localizedMessage", "") or "").strip()
    if _GO_TYPE.match(message):
        message = ""
    if not message and kind in _FAULT_WORDS:
        message = _FAULT_WORDS[kind](fault)
    for extra in getattr(fault, "faultMessage", None) or ():
        text = getattr(extra, "message", "")
        if text and text not in message:
            message = f"{message}; {text}" if message else text
    return f"{message.rstrip('.')} ({kind})" if message else f"vCenter gave no message ({kind})"


@contextlib.contextmanager
def vsphere_call(doing: str) -> Iterator[None]:
    """Run a vSphere call; its failure reads "<doing> failed: <sentence>." (its class and effect kept)."""
    try:
        yield
    except vmodl.MethodFault as fault:  # a stub without the guard (a simulator's own session)
        raise VSphereError(f"{doing} failed: {fault_sentence(fault)}.") from None
    except VSphereFault as exc:
        raise exc.reworded(f"{doing} failed: {fault_sentence(exc.fault)}.") from None
    except ConnectionFailed as exc:
        raise exc.reworded(f"{doing} failed: {exc.message.rstrip('.')}.") from None


def wait_for_task(task: vim.Task, doing: str, timeout: Optional[float] = None, poll: float = 0.2):
    """Wait until ``task`` ends; return its result, or raise VSphereError naming ``doing`` and why."""
    from ..polling import wait_until

    def ended(info) -> bool:
        if info.state == vim.TaskInfo.State.error:
            error = info.error
            sentence = fault_sentence(error) if error is not None else "vCenter gave no reason"
            raise VSphereError(f"{doing} failed: {sentence}.")
        return info.state == vim.TaskInfo.State.success

    def timed_out(info, elapsed: float) -> VSphereError:
        return VSphereError(f"{doing} did not finish within {timeout:.0f} s (task {task._moId} is {info.state}); "
                            f"see Recent Tasks in vCenter.")

    with vsphere_call(doing):
        return wait_until(lambda: task.info, ended, timeout=timeout, timed_out=timed_out, interval=poll).result
