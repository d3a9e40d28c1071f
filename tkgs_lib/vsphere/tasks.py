"""vSphere's tasks and faults, turned into outcomes and sentences in one place.

Every change the stages make in vCenter goes through an operations object whose calls run inside
:func:`vsphere_call`, and every task is waited for with :func:`wait_for_task`: a vSphere fault
(``vmodl.MethodFault``) becomes one :class:`VSphereError` sentence naming what was being done,
here and nowhere else. Deploy's import, lease, reconfigure and power-on tasks use the same two.
"""

from __future__ import annotations

import contextlib
import re
import time
from typing import Callable, Iterator, Optional

from pyVmomi import vim, vmodl

from ..errors import VSphereError

__all__ = ["fault_sentence", "vsphere_call", "wait_for_task"]


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
    """Run a vSphere call; a fault becomes VSphereError("<doing> failed: <sentence>.")."""
    try:
        yield
    except vmodl.MethodFault as fault:
        raise VSphereError(f"{doing} failed: {fault_sentence(fault)}.") from None


def wait_for_task(task: vim.Task, doing: str, timeout: Optional[float] = None, poll: float = 0.2):
    """Wait until ``task`` ends; return its result, or raise VSphereError naming ``doing`` and why."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with vsphere_call(doing):
        while True:
            info = task.info
            if info.state == vim.TaskInfo.State.success:
                return info.result
            if info.state == vim.TaskInfo.State.error:
                error = info.error
                sentence = fault_sentence(error) if error is not None else "vCenter gave no reason"
                raise VSphereError(f"{doing} failed: {sentence}.")
            if deadline is not None and time.monotonic() > deadline:
                raise VSphereError(f"{doing} did not finish within {timeout:.0f} s (task {task._moId} is "
                                   f"{info.state}); see Recent Tasks in vCenter.")
            time.sleep(poll)
