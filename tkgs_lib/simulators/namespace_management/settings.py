"""How the stand-in plays the Supervisor: one object the simulator and its stand-in share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["SupervisorSettings"]


@dataclass
class SupervisorSettings:
    """Changes take effect from the next enable (or disable).

    ``config_seconds``: how long an enable stays CONFIGURING once its checks pass, and a disable
    REMOVING; ``load_balancer_timeout``: seconds per connection to a load balancer;
    ``load_balancer_netns``: the network namespace load balancers are reached from (the appliance
    simulator's lab), None for the simulator's own."""

    config_seconds: float = 3.0
    load_balancer_timeout: float = 5.0
    load_balancer_netns: Optional[str] = None
