"""Validating a site of /8 networks costs about what /24 networks cost (no address enumeration).

    python benchmarks/bench_validate_scale.py [--repeat 200]

Both sites are validated in the same run (load + every rule + summary and allocation tables),
the median of many repeats is compared, and the ratio /8 : /24 must be at most 2. As a
control, it also times one enumerating membership check (`address in list(network)`) on the
/24 and on a /16, to show what the benchmark would catch. Exits 1 when the ratio exceeds 2.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import yaml
from netaddr import IPAddress, IPNetwork

from tkgs_lib.site.network import plan_networks
from tkgs_lib.stages.plan import allocation_table, subnet_summary
from tkgs_lib.site import parse_site

TEMPLATE = """
site: bench
vcenter: {{server: vc.test.corp, username: administrator@vsphere.local, datacenter: DC, cluster: C,
          distributed_switch: DVS, datastores: [ds]}}
networks:
  management: {{vlan: 26, portgroup: m, cidr: "{m}", gateway: "{mg}"}}
  workload: {{vlan: 27, portgroup: w, cidr: "{w}", gateway: "{wg}", ranges: ["{wr}"]}}
  frontend: {{vlan: 28, portgroup: f, cidr: "{f}", gateway: "{fg}"}}
haproxy:
  vm_name: haproxy01
  hostname: haproxy01.test.corp
  nameservers: ["{mg}"]
  management_ip: "{ma}"
  workload_ip: "{wa}"
  frontend_ip: "{fa}"
  load_balancer_ranges: ["{lb}"]
"""


def site_text(prefix: int) -> str:
    def net(first_octet: int) -> IPNetwork:
        return IPNetwork(f"{first_octet}.0.0.0/{prefix}")

    m, w, f = net(10), net(20), net(30)
    host = lambda n, k: str(IPAddress(n.first + k))  # noqa: E731
    upper_half = IPNetwork(f"{IPAddress(f.first + f.size // 2)}/{prefix + 1}")
    return TEMPLATE.format(
        m=m, mg=host(m, 1), ma=f"{host(m, 10)}/{prefix}",
        w=w, wg=host(w, 1), wa=f"{host(w, 10)}/{prefix}", wr=f"{host(w, 50)}-{host(w, w.size - 20)}",
        f=f, fg=host(f, 1), fa=f"{host(f, 10)}/{prefix}", lb=str(upper_half))


def validate(text: str) -> None:
    plan = plan_networks(parse_site(text))
    assert not [x for x in plan.findings if x.is_error], plan.findings
    subnet_summary(plan)
    allocation_table(plan)


def median_seconds(fn, repeat: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    small, large = site_text(24), site_text(8)
    yaml.safe_load(large)  # fail early on a template mistake
    t24 = median_seconds(lambda: validate(small), args.repeat)
    t8 = median_seconds(lambda: validate(large), args.repeat)
    ratio = t8 / t24
    print(f"validate /24 networks: {t24 * 1e3:8.3f} ms (median of {args.repeat})")
    print(f"validate  /8 networks: {t8 * 1e3:8.3f} ms (median of {args.repeat})")
    print(f"ratio /8 : /24 = {ratio:.2f}  (target <= 2)")

    probe = IPAddress("10.0.0.200")
    e24 = median_seconds(lambda: probe in list(IPNetwork("10.0.0.0/24")), 5)
    e16 = median_seconds(lambda: probe in list(IPNetwork("10.0.0.0/16")), 3)
    print(f"control: one enumerating check costs {e24 * 1e3:.3f} ms on a /24 and {e16 * 1e3:.1f} ms on a /16 "
          f"(ratio {e16 / e24:.0f}); a /8 would be 256 times the /16.")
    ok = ratio <= 2
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
