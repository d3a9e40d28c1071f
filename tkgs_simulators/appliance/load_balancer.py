"""The appliance's load balancer as first boot leaves it: the Data Plane API user in the
``controller`` userlist, ``/etc/haproxy/haproxy.cfg`` with the release's head and nothing else,
the real HAProxy started on it, and the Data Plane API's view of that configuration.

Runs in the guest (its private view of the filesystem: ``/etc`` is an overlay), after the
network units, so a virtual IP binds only through the local routes ``anyip-routes.service`` made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .dataplane_configuration import ConfigurationAPI
from .haproxy_config import CONFIG_FILE, head, md5_crypt, userlist_users
from .haproxy_service import HAProxy

__all__ = ["LoadBalancer", "boot"]

# The appliance never sets it (v0.1.10's ansible/roles/common/tasks/main.yml sets only ip_forward
# and the IPv6 sysctls): an address binds only when it is local, a virtual IP only by an anyip route.
NONLOCAL_BIND = Path("/proc/sys/net/ipv4/ip_nonlocal_bind")


@dataclass
class LoadBalancer:
    haproxy: HAProxy
    configuration: ConfigurationAPI
    users: dict[str, str] = field(repr=False)  # the controller userlist: name → MD5-crypt hash

    def stop(self) -> None:
        self.haproxy.stop()


def boot(properties: dict[str, str], first: bool = True) -> LoadBalancer:
    """First boot's userlist (empty user or password fall back to admin / haproxy, as
    setHAProxyUserPass does at v0.1.10), the file, and HAProxy running on it. A later boot keeps the
    userlist the file holds (a password changed since stays changed)."""
    kept = userlist_users(Path(CONFIG_FILE).read_text()) if not first and Path(CONFIG_FILE).exists() else {}
    user = properties.get("loadbalance.haproxy_user") or "admin"
    users = kept or {user: md5_crypt(properties.get("loadbalance.haproxy_pwd") or "haproxy")}
    NONLOCAL_BIND.write_text("0\n")
    haproxy = HAProxy()
    configuration = ConfigurationAPI(haproxy, head(users))
    Path(configuration.config_file).parent.mkdir(parents=True, exist_ok=True)
    configuration.save()
    haproxy.start()
    return LoadBalancer(haproxy, configuration, users)
