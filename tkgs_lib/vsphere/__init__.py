"""vCenter: TLS, the REST client, the connection, the inventory, and what each stage prepares."""

from __future__ import annotations

from ..errors import VSphereError

__all__ = ["ValuesOnly"]


class ValuesOnly:
    """Stands in for a stage's operations when its plan was made from values only (no session).

    Such a plan reads and compares like any other; running one of its steps refuses, naming
    the function that plans with a session."""

    def __init__(self, planner: str) -> None:
        self._planner = planner

    def __getattr__(self, name: str):
        def refuse(*args, **kwargs):
            raise VSphereError(f"this plan was made from values only; plan with {self._planner} to apply it.")
        return refuse
