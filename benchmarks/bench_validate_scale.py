"""What validating a site costs as the site grows, and what a hostile site file can make it cost.

    python benchmarks/bench_validate_scale.py [--repeat 200]

Three measures, each against a baseline timed in the same run; exits 1 when any misses its target:

1. /8 networks against /24 ones (load + every rule + summary and allocation tables): ratio at
   most 2 (no rule enumerates addresses). A control times one enumerating membership check on a
   /24 and a /16, to show what this would catch.
2. 1,000 workload and 1,000 load-balancer ranges against 100 of each: ratio at most 20 (overlaps
   are a sweep, not all pairs; quadratic checks gave 39).
3. `tkgs-runbook validate` on hostile files against the article's site: a 50 MB comment, a 50 MB
   list, 200,000 unknown keys, and the largest file allowed filled with unknown keys: each at most
   3x the article's site (files are refused above the size limit before parsing, and each rule's
   findings are capped when printed).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from netaddr import IPAddress, IPNetwork

from tkgs_lib.site.layout import network_layout
from tkgs_lib.stages.networks import allocation_table, subnet_summary
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
    plan = network_layout(parse_site(text))
    bad = [x for x in plan.findings if x.is_error]
    assert not bad, f"{len(bad)} errors, the first: {bad[0]}"
    subnet_summary(plan)
    allocation_table(plan)


def ranges_text(count: int) -> str:
    """The article's site with ``count`` small workload ranges and ``count`` /32 virtual IPs, all clear."""
    w = IPNetwork("10.64.8.0/21")
    step = (w.size - 100) // count
    workload = [f"{IPAddress(w.first + 50 + i * step)}-{IPAddress(w.first + 50 + i * step + step // 2)}"
                for i in range(count)]
    lb = [f"{IPAddress(IPAddress('10.96.1.0').value + i * 4)}/30" for i in range(count)]  # a /16 frontend holds them
    data = yaml.safe_load(SITE.read_text())
    data["networks"]["workload"]["ranges"] = workload
    data["networks"]["frontend"].update(cidr="10.96.0.0/16", gateway="10.96.0.1")
    data["haproxy"]["frontend_ip"] = "10.96.0.10/16"
    data["haproxy"]["load_balancer_ranges"] = lb
    data["workload_management"]["services_cidr"] = "172.20.0.0/23"  # the frontend now holds 10.96.0.0/23
    return yaml.safe_dump(data)


SITE = Path(__file__).resolve().parent.parent / "examples" / "example-site.yaml"


def validate_any(text: str) -> None:
    plan = network_layout(parse_site(text))
    subnet_summary(plan)
    allocation_table(plan)


def cli_seconds(path: Path, repeat: int) -> float:
    script = Path(sys.executable).with_name("tkgs-runbook")
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([str(script), "validate", str(path)], capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def hostile_files(folder: Path) -> dict[str, Path]:
    from tkgs_lib.site.loading import MAX_SITE_BYTES

    article = SITE.read_text()
    files = {"a 50 MB comment": article + "# " + "x" * (50 << 20) + "\n",
             "a 50 MB list": article + "extra: [" + "1," * (25 << 20) + "1]\n",
             "200,000 unknown keys": article + "".join(f"unknown_{i}: {i}\n" for i in range(200_000))}
    keys, text = 0, article
    while len(text) < MAX_SITE_BYTES - 40:
        text += f"unknown_{keys}: {keys}\n"
        keys += 1
    files[f"the largest file allowed: {keys:,} unknown keys"] = text
    out = {}
    for name, content in files.items():
        path = folder / f"{len(out)}.yaml"
        path.write_text(content)
        out[name] = path
    return out


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

    hundred, thousand = ranges_text(100), ranges_text(1000)
    validate(hundred)
    validate(thousand)  # both must be clean: the measure is of checking, not of reporting
    t100 = median_seconds(lambda: validate_any(hundred), max(3, args.repeat // 20))
    t1000 = median_seconds(lambda: validate_any(thousand), max(3, args.repeat // 20))
    print(f"\nvalidate 100 ranges of each kind:   {t100 * 1e3:8.1f} ms")
    print(f"validate 1,000 ranges of each kind: {t1000 * 1e3:8.1f} ms")
    print(f"ratio 1,000 : 100 = {t1000 / t100:.1f}  (target <= 20)")
    ok &= t1000 / t100 <= 20

    with tempfile.TemporaryDirectory() as folder:
        base = cli_seconds(SITE, 3)
        print(f"\ntkgs-runbook validate, the article's site: {base:.2f} s")
        for name, path in hostile_files(Path(folder)).items():
            took = cli_seconds(path, 3)
            print(f"  {name:<45} {took:6.2f} s  ratio {took / base:4.1f}  (target <= 3)")
            ok &= took / base <= 3
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
