"""``routetablectl.sh``, route-tables.service's script, as each release has it, played with real ``ip`` commands.

Read in haproxytech/vmware-haproxy at each tag, ``ansible/roles/vmware/files/var/lib/vmware/routetablectl.sh``
(blobs def4241 at v0.1.7, 6940f9e at v0.1.8, 9c73430 at v0.1.9 and v0.1.10, 604630c at v0.2.0), never
copied: one class per version of the file, each a subclass of the one before that overrides what
``git diff`` between the two tags changes. Methods are named after the script's functions and follow
their steps in order; the bash each step stands for is quoted beside it. ``up`` is ``up_routes``
(which starts with ``down_routes``); ``down`` is ``down_routes``, run as ``ExecStopPost``.

What the steps amount to, per release, is the kernel's to say (they run real ``ip`` commands):
v0.1.9's and v0.1.10's ``down`` leaves each table's link-scoped route, so their ``up`` after it fails
with "File exists"; v0.2.0's ``down`` deletes no rule (``ip call`` is no ``ip`` command).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Iterator

from .shell import Script, ScriptExit, awk_field, ifs_comma

__all__ = ["RouteTableCtlV0_1_7", "RouteTableCtlV0_1_8", "RouteTableCtlV0_1_9", "RouteTableCtlV0_2_0",
           "CONFIG_FILE", "RT_TABLES_FILE", "WORKLOAD_NETWORKS_FILE", "RT_TABLE_NAME_PREFIX"]

RT_TABLE_NAME_PREFIX = "rtctl_"
CONFIG_FILE = Path("/etc/vmware/route-tables.cfg")
RT_TABLES_FILE = Path("/etc/iproute2/rt_tables")
WORKLOAD_NETWORKS_FILE = Path("/etc/vmware/workload-networks.cfg")  # v0.2.0
WORKLOAD_RT = f"{RT_TABLE_NAME_PREFIX}workload"  # v0.2.0


class RouteTableCtlV0_1_7(Script):
    """v0.1.7: one five-field line per network; ``down`` stops at a table whose rule or default route is gone."""

    def dev_from_mac(self, mac: str) -> str:
        # ip -o link | awk -F': ' -vIGNORECASE=1 '/<mac>/ { print $2 }' | awk -F'@' '{print $1}'
        try:
            pattern = re.compile(mac, re.IGNORECASE)
        except re.error:
            raise ScriptExit(2) from None  # awk refuses the expression; pipefail and errexit end the script
        names = []
        for line in self.sh.run(["ip", "-o", "link"]).stdout.splitlines():
            if pattern.search(line):
                fields = line.split(": ")
                names.append(fields[1].split("@")[0] if len(fields) > 1 else "")
        return "\n".join(names).rstrip("\n")  # $(...) drops the trailing line breaks

    def down_routes(self) -> None:
        sh = self.sh
        tmp = RT_TABLES_FILE.with_name(f"{RT_TABLES_FILE.name}.tmp")
        tmp.write_text("")  # printf '' >"${RT_TABLES_FILE}.tmp"
        for line in sh.read_lines(RT_TABLES_FILE):
            if RT_TABLE_NAME_PREFIX not in line:  # copy the line only if it is not a rtctl_ table
                with tmp.open("a") as kept:
                    kept.write(f"{line}\n")
                continue
            route_table_name = awk_field(line, 2)
            sh.echo2(f"discovered route table {route_table_name}")
            self.disable_table(route_table_name)
        tmp.replace(RT_TABLES_FILE)  # mv -f "${RT_TABLES_FILE}.tmp" "${RT_TABLES_FILE}"

    def disable_table(self, route_table_name: str) -> None:
        """What ``down_routes`` does for one rtctl_ line of rt_tables: its rule, then its default route."""
        self.remove_rule(route_table_name)
        self.remove_default_route(route_table_name)

    def rules_of(self, route_table_name: str) -> tuple[bool, str]:
        """``route_rule="$(ip rule | grep -F "${name}" | awk -F':[[:space:]]' '{print $2}')"``: whether grep
        found a line (pipefail: the assignment fails when it found none), and the rules found."""
        found = [line for line in self.sh.run(["ip", "rule"]).stdout.splitlines() if route_table_name in line]
        rules = [(re.split(r":\s", line) + [""])[1] for line in found]
        return bool(found), "\n".join(rules).rstrip("\n")

    def remove_rule(self, route_table_name: str) -> None:
        sh = self.sh
        found, route_rule = self.rules_of(route_table_name)
        if not found:
            raise ScriptExit(1)  # the assignment failed: errexit
        sh.echo2(f"removing ip rule: {route_rule}")
        sh.errexit(sh.ip("rule", "del", *route_rule.split()))  # ip rule del ${route_rule}: unquoted, word-split

    def remove_default_route(self, route_table_name: str) -> None:
        sh = self.sh
        sh.echo2(f"removing default route for {route_table_name}")
        sh.errexit(sh.ip("route", "del", "table", route_table_name, "default"))

    def create_table(self, cfg_table_id: str, route_table_name: str) -> None:
        self.sh.echo2(f"create new route table id={cfg_table_id} name={route_table_name}")
        # printf '%d\t%s\n' "${cfg_table_id}" "${route_table_name}" >>"${RT_TABLES_FILE}"
        self.sh.errexit(self.sh.printf_append(RT_TABLES_FILE, "%d\t%s\n", cfg_table_id, route_table_name))

    def gateway(self, line_parts: list[str]) -> str:
        return self.sh.part(line_parts, 4)  # cfg_gateway="${line_parts[4]}"

    def create_route(self, route_table_name: str, cfg_cidr: str, cfg_gateway: str, cfg_dev: str) -> None:
        sh = self.sh
        sh.echo2(f"create default route for {route_table_name}")
        # quoted: an empty device is one empty argument, several devices one argument with line breaks
        sh.errexit(sh.ip("route", "add", "table", route_table_name, "default", "via", cfg_gateway, "dev", cfg_dev,
                         "proto", "static"))

    def config_lines(self) -> Iterator[list[str]]:
        """route-tables.cfg's lines, each split: ``IFS=, read -ra line_parts <<<"${line}"``."""
        for line in self.sh.entries(CONFIG_FILE):
            yield ifs_comma(line)

    def line_fields(self, line_parts: list[str]) -> tuple[str, str, str, str]:
        """What ``up_routes`` reads of a line (nounset: a line with too few fields ends the script) and the
        device that has its MAC: route_table_name, cfg_cidr, cfg_gateway, cfg_dev."""
        sh = self.sh
        cfg_table_name = sh.part(line_parts, 1)
        cfg_mac_addr = sh.part(line_parts, 2)
        cfg_cidr = sh.part(line_parts, 3)
        cfg_gateway = self.gateway(line_parts)
        cfg_dev = self.dev_from_mac(cfg_mac_addr)
        return f"{RT_TABLE_NAME_PREFIX}{cfg_table_name}", cfg_cidr, cfg_gateway, cfg_dev

    def up_routes(self) -> None:
        sh = self.sh
        self.down_routes()  # enabling the custom route tables first requires removing any
        for line_parts in self.config_lines():
            cfg_table_id = line_parts[0]  # "${line_parts[0]}": a line that is not skipped has one
            route_table_name, cfg_cidr, cfg_gateway, cfg_dev = self.line_fields(line_parts)
            self.create_table(cfg_table_id, route_table_name)
            self.create_route(route_table_name, cfg_cidr, cfg_gateway, cfg_dev)
            sh.echo2(f"create IP rule for {route_table_name}")
            sh.errexit(sh.ip("rule", "add", "from", cfg_cidr, "lookup", route_table_name))


class RouteTableCtlV0_1_8(RouteTableCtlV0_1_7):
    """v0.1.8: ``down`` ignores a table whose rule or default route is gone (``|| echo2 ...``)."""

    def remove_rule(self, route_table_name: str) -> None:
        sh = self.sh
        found, route_rule = self.rules_of(route_table_name)
        if not found:
            sh.echo2("ignoring failed attempt to find existing table")
        sh.echo2(f"removing ip rule: {route_rule}")
        if sh.ip("rule", "del", *route_rule.split()).returncode:
            sh.echo2(f'ignoring failed attempt to delete route rule "{route_rule}"')

    def remove_default_route(self, route_table_name: str) -> None:
        sh = self.sh
        sh.echo2(f"removing default route for {route_table_name}")
        if sh.ip("route", "del", "table", route_table_name, "default").returncode:
            sh.echo2(f'ignoring failed attempt to delete route table "{route_table_name}"')  # echo: stdout


class RouteTableCtlV0_1_9(RouteTableCtlV0_1_8):
    """v0.1.9 (v0.1.10 holds the same file): a line of four fields (no gateway) makes the link-scoped route."""

    def gateway(self, line_parts: list[str]) -> str:
        return line_parts[4] if len(line_parts) == 5 else ""  # if [[ ${#line_parts[@]} == 5 ]]

    def destination(self, cfg_cidr: str) -> str:
        """``$(python3 -c "...print(ipaddress.ip_network(sys.argv[1], strict=False))" "${cfg_cidr}")``."""
        try:
            return str(ipaddress.ip_network(cfg_cidr, strict=False))
        except ValueError as exc:
            self.sh.echo2(f"ValueError: {exc}")  # the traceback's last line
            raise ScriptExit(1) from None

    def link_scoped_route(self, route_table_name: str, cfg_cidr: str, cfg_dev: str) -> str:
        """The command line of a four-field line's route."""
        cfg_destination = self.destination(cfg_cidr)
        host = cfg_cidr.split("/")[0]  # echo "${cfg_cidr}" | cut -d/ -f 1
        return (f"ip route add table {route_table_name} {cfg_destination} dev {cfg_dev} proto kernel scope link "
                f"src {host}")

    def create_route(self, route_table_name: str, cfg_cidr: str, cfg_gateway: str, cfg_dev: str) -> None:
        if cfg_gateway != "":
            super().create_route(route_table_name, cfg_cidr, cfg_gateway, cfg_dev)
            return
        cmd = self.link_scoped_route(route_table_name, cfg_cidr, cfg_dev)
        self.sh.echo2(f"create route with cmd: {cmd}")
        self.sh.errexit(self.sh.eval(cmd))


class RouteTableCtlV0_2_0(RouteTableCtlV0_1_9):
    """v0.2.0: rt_tables from ``add_route_tables``, ``to`` rules from workload-networks.cfg, a rule for the
    gateway line only; ``down`` means to delete a table's every rule and route, but deletes no rule."""

    def call(self, command: str) -> None:
        """``call``: echo2 the command line, then ``eval`` it (errexit)."""
        self.sh.echo2(command)
        self.sh.errexit(self.sh.eval(command))

    def disable_table(self, route_table_name: str) -> None:
        """Its rules (meant), then every route of its table."""
        sh = self.sh
        # while ip call "rule del from 0/0 to 0/0 table ${name} 2>/dev/null"; do true; done: `ip call` is no ip
        # command (and the redirection is inside the quoted argument), so the loop ends at once
        while sh.ip("call", f"rule del from 0/0 to 0/0 table {route_table_name} 2>/dev/null").returncode == 0:
            pass
        # while IFS= read -r route; do call "ip route del table ${name} ${route}"; done < <(ip route show table ...)
        for route in sh.run(["ip", "route", "show", "table", route_table_name]).stdout.split("\n")[:-1]:
            self.call(f"ip route del table {route_table_name} {route}")

    def add_route_tables(self) -> None:
        sh = self.sh
        # tables=$(grep -E '^\w' "${CONFIG_FILE}" || echo "" | cut -d, -f1,2 | uniq): the pipe binds to `echo ""`
        # alone, so the lines are taken whole, one rt_tables entry each (no duplicate is prevented); grep reads
        # a last line without a line break too
        lines = CONFIG_FILE.read_text().split("\n")
        tables = "\n".join(line for line in lines if re.match(r"\w", line))
        for table in tables.split():  # for table in ${tables}: word-split
            line = ifs_comma(table)  # IFS=, read -ra line <<< "${table}"
            route_table_id = sh.part(line, 0, "line")
            route_table_name = f"{RT_TABLE_NAME_PREFIX}{sh.part(line, 1, 'line')}"
            self.create_table(route_table_id, route_table_name)

    def add_workload_network_rules(self) -> None:
        sh = self.sh
        if not WORKLOAD_NETWORKS_FILE.is_file():
            sh.echo2("no additional workload networks detected")
            return
        for cfg_cidr in sh.entries(WORKLOAD_NETWORKS_FILE):
            self.call(f"ip rule add to {cfg_cidr} lookup {WORKLOAD_RT}")

    def up_routes(self) -> None:
        sh = self.sh
        self.down_routes()
        if not CONFIG_FILE.is_file():
            sh.echo2(f"missing config file {CONFIG_FILE}")
            return
        self.add_route_tables()
        self.add_workload_network_rules()
        for line_parts in self.config_lines():
            route_table_name, cfg_cidr, cfg_gateway, cfg_dev = self.line_fields(line_parts)
            if cfg_gateway == "":
                self.call(self.link_scoped_route(route_table_name, cfg_cidr, cfg_dev))
            else:
                self.call(f"ip route add table {route_table_name} default via {cfg_gateway} dev {cfg_dev} "
                          f"proto static")
                self.call(f"ip rule add from {cfg_cidr} lookup {route_table_name}")
