"""vSphere's tasks and faults, turned into outcomes and sentences in one place.

Every change the stages make in vCenter goes through an operations object whose calls run inside
:func:`vsphere_call`, and every task is waited for with :func:`wait_for_task`: a vSphere fault
(``vmodl.MethodFault``) becomes one :class:`VSphereError` sentence naming what was being done,
here and nowhere else. Deploy's import, lease, reconfigure and power-on tasks use the same two.
"""

from __future__ import annotations

import contextlib
import time
from typing import Iterator, Optional

from pyVmomi import vim, vmodl

from ..errors import VSphereError

__all__ = ["fault_sentence", "vsphere_call", "wait_for_task"]


def fault_sentence(fault: BaseException) -> str:
    """A vSphere fault as one sentence: its message, else its kind, with what vCenter added."""
    message = getattr(fault, "msg", "") or ""
    kind = type(fault).__name__.rsplit(".", 1)[-1]
    if not message:
        # localizedMessage and faultMessage carry the words vCenter shows in its own UI.
        message = getattr(fault, "localizedMessage", "") or ""
    for extra in getattr(fault, "faultMessage", None) or ():
        text = getattr(extra, "message", "")
        if text and text not in message:
            message = f"{message}; {text}" if message else text
    return f"{message.rstrip('.')} ({kind})" if message else kind


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
