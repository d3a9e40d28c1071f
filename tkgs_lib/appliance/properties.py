"""What the appliance reads at its first boot: its vApp properties, mapped from the site exactly.

:func:`appliance_properties` turns the site and its network plan into the values of the OVA's
property keys (``appliance.*``, ``network.*``, ``loadbalance.*``), each with the site field it
came from, and checks every value against the OVA's own descriptor before anything is touched:
a key the OVA does not declare (a v0.2.0 key on v0.1.10), a deployment option it lacks, or a
value outside a property's type or qualifiers is an error finding naming both the site field
and the property key. Under the ``default`` deployment the frontend properties are not sent.

Facts about how the appliance reads them (its first-boot script): each ``,``-separated entry
of ``loadbalance.service_ip_range`` becomes a line of ``anyip-routes.cfg`` verbatim (so no space
may follow a comma); ``network.nameservers`` goes into a YAML list as written; a PEM written on
one line with its line breaks as spaces is turned back into lines; ``permit_root_login`` is
compared case-insensitively with "true" (vCenter sends "True").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Optional

from ..credentials import MASK, Secret, is_secret_property
from ..errors import ApplianceError
from ..findings import Finding
from ..ova import OvfDescriptor, OvfProperty
from ..site import Site
from ..site.network import NetworkLayout
from ..display.tables import Table
from .ca import check_ca_pair, one_line_pem

__all__ = ["PropertyValue", "ApplianceProperties", "appliance_properties", "ROOT_PASSWORD", "DATAPLANE_PASSWORD"]

ROOT_PASSWORD, DATAPLANE_PASSWORD = "appliance.root_pwd", "loadbalance.haproxy_pwd"


@dataclass(frozen=True)
class PropertyValue:
    """One property's value; one that carries a secret (credentials.SECRETS) is held as a Secret."""

    key: str  # the OVA's property key, e.g. network.management_ip
    value: str
    field: str  # the site field (or environment variable) it came from

    def __post_init__(self) -> None:
        if self.password and not isinstance(self.value, Secret):
            object.__setattr__(self, "value", Secret(self.value))

    @property
    def password(self) -> bool:
        return is_secret_property(self.key)

    @property
    def shown(self) -> str:
        return MASK if self.password and self.value else self.value


@dataclass
class ApplianceProperties:
    """Every property that will be sent, and what is wrong with any of them."""

    deployment: str
    values: list[PropertyValue] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def as_dict(self) -> dict[str, str]:
        return {v.key: v.value for v in self.values}

    def table(self) -> Table:
        """Every property that will be sent, with the site field it came from; passwords masked."""
        return Table([{"property": v.key, "value": v.shown, "from": v.field} for v in self.values],
                     ["property", "value", "from"], empty="No property will be sent.")


def _wanted(site: Site, network: NetworkLayout, passwords: Mapping[str, str]) -> list[PropertyValue]:
    """The site's value for each property key, in the descriptor's order."""
    hp = site.haproxy
    nets = network.networks
    values = [
        PropertyValue(ROOT_PASSWORD, passwords.get(ROOT_PASSWORD, ""), f"${hp.root_password_env}"),
        PropertyValue("appliance.permit_root_login", "True" if hp.permit_root_login else "False",
                      "haproxy.permit_root_login"),
    ]
    values += [
        PropertyValue("network.hostname", hp.hostname, "haproxy.hostname"),
        PropertyValue("network.nameservers", ", ".join(hp.nameservers), "haproxy.nameservers"),
    ]
    roles = ["management", "workload"] + (["frontend"] if network.deployment == "frontend" else [])
    for role in roles:
        planned = nets.get(role)
        if planned is None or planned.appliance is None or planned.gateway is None:
            continue  # the plan stage reports what is missing; nothing half is sent
        values += [PropertyValue(f"network.{role}_ip", str(planned.appliance), f"haproxy.{role}_ip"),
                   PropertyValue(f"network.{role}_gateway", str(planned.gateway), f"networks.{role}.gateway")]
    if hp.additional_workload_networks:
        values.append(PropertyValue("network.additional_workload_networks", ",".join(hp.additional_workload_networks),
                                    "haproxy.additional_workload_networks"))
    # Joined by "," alone: the appliance splits on "," and writes each part verbatim as a line of
    # anyip-routes.cfg, byte for byte what the plan stage showed.
    values += [
        PropertyValue("loadbalance.service_ip_range", ",".join(network.load_balancer_lines),
                      "haproxy.load_balancer_ranges"),
        PropertyValue("loadbalance.dataplane_port", str(hp.dataplane_port), "haproxy.dataplane_port"),
        PropertyValue("loadbalance.haproxy_user", hp.dataplane_username, "haproxy.dataplane_username"),
        PropertyValue(DATAPLANE_PASSWORD, passwords.get(DATAPLANE_PASSWORD, ""), f"${hp.dataplane_password_env}"),
    ]
    return values


def appliance_properties(site: Site, network: NetworkLayout, descriptor: OvfDescriptor,
                         passwords: Mapping[str, str]) -> ApplianceProperties:
    """The properties to send for ``site``, checked against ``descriptor``. ``passwords`` maps
    ROOT_PASSWORD and DATAPLANE_PASSWORD to their values (read from the environment or a prompt)."""
    result = ApplianceProperties(network.deployment)
    options = [o.id for o in descriptor.deployment_options]
    if options and network.deployment not in options:
        result.findings.append(Finding.error(
            "haproxy.deployment", f"the OVA {descriptor.name} has no deployment option {network.deployment!r} "
                                  f"(it has {', '.join(options)}).", f"use one of {', '.join(options)}."))
        return result
    declared = {p.key: p for p in descriptor.properties_for(network.deployment)}
    everywhere = {p.key for p in descriptor.properties}
    values = _wanted(site, network, passwords)
    ca_file, key_file = site.haproxy.ca_cert_file, site.haproxy.ca_key_file
    if ca_file and key_file:
        try:
            ca, key_pem = check_ca_pair(ca_file, key_file)
        except ApplianceError as exc:
            result.findings.append(Finding.error("haproxy.ca_cert_file", exc.message,
                                                 "give a CA certificate and its own key, valid now, or remove both "
                                                 "to let the appliance make its CA."))
        else:
            values[2:2] = [PropertyValue("appliance.ca_cert", one_line_pem(ca.pem), "haproxy.ca_cert_file"),
                           PropertyValue("appliance.ca_cert_key", one_line_pem(key_pem), "haproxy.ca_key_file")]
    for value in values:
        prop = declared.get(value.key)
        if prop is None:
            where = (f"only under the deployment option(s) {', '.join(descriptor.property(value.key).configurations)}"
                     if value.key in everywhere else "at all")
            result.findings.append(Finding.error(
                value.field, f"the OVA {descriptor.name} ({descriptor.version or 'version unknown'}) does not declare "
                             f"the property {value.key} {where}, so this value cannot be sent.",
                "remove the value from the site, or use an appliance OVA that declares it (v0.2.0 and later for "
                "network.additional_workload_networks)."))
            continue
        problem = value_problem(prop, value.value, shown="its value (a secret, not shown)" if value.password else None)
        if problem:
            result.findings.append(Finding.error(value.field, f"property {value.key}: {problem}",
                                                 "change the site value to one the OVA accepts."))
            continue
        result.values.append(value)
    return result


_QUALIFIER = re.compile(r"(MinLen|MaxLen|MinValue|MaxValue|ValueMap)\(([^)]*)\)")
_INT_BOUNDS = {"int": (-2**31, 2**31 - 1), "uint8": (0, 255), "uint16": (0, 65535), "uint32": (0, 2**32 - 1),
               "sint8": (-128, 127), "sint16": (-32768, 32767), "sint32": (-2**31, 2**31 - 1),
               "uint64": (0, 2**64 - 1), "sint64": (-2**63, 2**63 - 1), "int64": (-2**63, 2**63 - 1)}


def value_problem(prop: OvfProperty, value: str, shown: Optional[str] = None) -> Optional[str]:
    """Why ``value`` is outside ``prop``'s OVF type or qualifiers, or None when it is acceptable.
    ``shown``: how the value is named in the sentence (a secret's is never shown), default its repr,
    cut when long."""
    shown = shown or (repr(value) if len(value) <= 60 else repr(value[:57] + "...") + f" ({len(value):,} characters)")
    kind = prop.type.lower()[:40]
    qualifiers = dict(_QUALIFIER.findall(prop.qualifiers or ""))
    bounds = {}
    for name in ("MinValue", "MaxValue", "MinLen", "MaxLen"):
        if name in qualifiers:
            if not re.fullmatch(r"-?[0-9]{1,20}", qualifiers[name].strip()):
                return f"the OVA declares {name}({qualifiers[name][:20]}), which is not a number: the OVA is malformed."
            bounds[name] = int(qualifiers[name])
    if kind == "boolean":
        if value.lower() not in ("true", "false"):
            return f"{shown} is not a boolean (true or false), which the OVA declares."
    elif kind in _INT_BOUNDS or kind.startswith(("int", "uint", "sint")):
        if not re.fullmatch(r"-?[0-9]{1,40}", value):
            return f"{shown} is not a whole number, which the OVA declares ({prop.type[:40]})."
        number = int(value)
        low, high = _INT_BOUNDS.get(kind, (None, None))
        low, high = bounds.get("MinValue", low), bounds.get("MaxValue", high)
        if (low is not None and number < low) or (high is not None and number > high):
            return f"{number} is outside {low}..{high}, the range the OVA declares."
    elif kind in ("string", "password", "ip", "ip:network", "expression"):
        if "MinLen" in bounds and len(value) < bounds["MinLen"]:
            return f"is shorter than {bounds['MinLen']} characters, the least the OVA declares."
        if "MaxLen" in bounds and len(value) > bounds["MaxLen"]:
            return f"is {len(value)} characters long, over the {bounds['MaxLen']} the OVA declares."
    else:
        return f"the OVA declares it of type {prop.type[:40]!r}, which this runbook does not know how to fill."
    if "ValueMap" in qualifiers:
        allowed = [v.strip().strip('"') for v in qualifiers["ValueMap"].split(",")]
        if value not in allowed:
            return f"{shown} is not one of {', '.join(allowed)[:200]}, the values the OVA declares."
    return None
