"""vCenter: TLS, the REST client, the connection, the inventory, and what each stage prepares."""

from __future__ import annotations

from typing import Optional

from ..errors import VSphereError

__all__ = ["ValuesOnly", "PendingId"]


class ValuesOnly:
    """Stands in for a stage's operations when its plan was made from values only (no session).

    Such a plan reads and compares like any other; running one of its steps refuses, naming
    the function that plans with a session. Only public names answer: a probe for a private or
    special name (``_repr_html_``, ``__deepcopy__``...) gets AttributeError, as from any object."""

    def __init__(self, planner: str) -> None:
        self._planner = planner

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)

        def refuse(*args, **kwargs):
            raise VSphereError(f"this plan was made from values only; plan with {self._planner} to apply it.")
        return refuse


class PendingId:
    """The id of one vSphere object a plan needs: known now when the object exists, or set by the
    step that creates it, for the later steps that use it.

    ``tag_id.set(ops.create_tag(...))`` in the creating step; ``tag_id.get()`` in a later one."""

    def __init__(self, what: str, value: Optional[str] = None) -> None:
        self.what, self.value = what, value

    def __repr__(self) -> str:
        return f"<PendingId {self.what}: {self.value or 'not known yet'}>"

    def set(self, value: str) -> str:
        self.value = value
        return value

    def get(self) -> str:
        if not self.value:
            raise VSphereError(f"the id of {self.what} is not known: the step that creates it has not run.")
        return self.value
