"""Verify and repair across a slow link: round trips, not bytes, are what a WAN charges.

    sudo python benchmarks/bench_verify_link.py [--delay-ms 25] [--rounds 5] [--demos 3] [--no-demo]

A simulated appliance (real sshd, real kernel routes, the Data Plane API stand-in) in its network
namespaces, and a TCP proxy of this script inside the appliance's namespace, in front of its sshd and
its Data Plane API, holding every chunk back ``--delay-ms`` in each direction: one round trip costs
twice that. (A kernel delay, ``tc netem``, would be the truer link; its module is missing on the
machines this runs on, so the proxy stands in for it.)

In one run, alternating (ABAB), the verify stage's own read (``verify.read_facts``: the Data Plane
API's ``/v2/info`` over a new TLS connection, and every fact of the appliance over the open SSH
session) through the proxy with the delay and without it. The added time divided by a round trip
is how many round trips the read costs. Target: at most 3 (TCP, TLS and the request for the API,
side by side with the one SSH exec for the facts). The SSH login is once per stage and not part
of the read; its own cost is printed too.

Then the number of SSH execs one verify read and one repair (the article's line, applied) make,
printed; and, unless ``--no-demo``, the demo's stage times from its stages.json, ``--demos`` runs of
it, with the target repair ≤ 1.5 × verify for the median run (one run's two stages vary by a
fifth or so between runs on a busy host). Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the tests' appliance, deployed as tkgs-runbook deploys a site

ROUND_TRIPS_TARGET = 3.0
REPAIR_TARGET = 1.5
ROOT_PASSWORD, DATAPLANE_PASSWORD = "bench-root-Pa55-word", "bench-dataplane-Pa55"


class DelayProxy:
    """TCP forwarding inside ``netns``: listen on ``host`` (one port per target), connect to each
    target, and deliver every chunk ``delay`` seconds after it arrived, in order, each way."""

    def __init__(self, netns: str, host: str, targets: list[tuple[str, int]]) -> None:
        self.netns, self.host, self.targets, self.delay = netns, host, targets, 0.0
        self.ports: list[int] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="delay-proxy", daemon=True)

    def __enter__(self) -> "DelayProxy":
        self._thread.start()
        if not self._ready.wait(10):
            raise SystemExit("the delaying proxy did not start")
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _shutdown(self) -> None:
        """Every connection's tasks cancelled and awaited: nothing left pending when the loop closes."""
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _serve(self) -> None:
        from tkgs_simulators.appliance.netns import entered

        with entered(self.netns):  # every socket of this thread lives in the appliance's namespace
            self._loop = loop = asyncio.new_event_loop()
            servers = [loop.run_until_complete(asyncio.start_server(
                lambda r, w, t=target: self._forward(r, w, t), self.host, 0)) for target in self.targets]
            self.ports = [s.sockets[0].getsockname()[1] for s in servers]
            self._ready.set()
            loop.run_forever()
            for server in servers:
                server.close()
            loop.close()

    async def _forward(self, reader, writer, target) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer),
                                 return_exceptions=True)
        except asyncio.CancelledError:  # the proxy stopping: the connection just ends
            writer.close()
            up_writer.close()

    async def _pipe(self, reader, writer) -> None:
        loop, queue = asyncio.get_running_loop(), asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(deliver())
        try:
            while True:
                data = await reader.read(65536)
                await queue.put((loop.time() + self.delay, data))
                if not data:
                    break
        finally:
            await sender


def boot(work: Path, faults=None):
    """A site file (the example's), its appliance booted, and a run folder holding the CA as the deploy
    stage leaves it."""
    from appliance_fixtures import appliance_for_site
    from tkgs_lib.stages.provided import ApplianceCa, ApplianceRelease, provide
    from tkgs_lib.site import load_site

    data = yaml.safe_load((ROOT / "examples" / "example-site.yaml").read_text())
    data["haproxy"]["ssh_known_hosts"] = "known_hosts"
    work.mkdir(parents=True, exist_ok=True)
    site_file = work / "site.yaml"
    site_file.write_text(yaml.safe_dump(data))
    site = load_site(site_file)
    sim = appliance_for_site(site, faults=faults, passwords={"appliance.root_pwd": ROOT_PASSWORD,
                                                             "loadbalance.haproxy_pwd": DATAPLANE_PASSWORD})
    sim.start()
    (work / "known_hosts").write_text(sim.known_hosts())
    folder = work / "run"
    folder.mkdir(exist_ok=True)
    (folder / "haproxy-ca.pem").write_text(sim.ca_pem)
    provide(folder, ApplianceCa("haproxy-ca.pem"),
            ApplianceRelease("v0.1.10", "the benchmark's appliance, booted as v0.1.10"))
    return sim, site_file, folder


def measure_verify(work: Path, delay: float, rounds: int) -> dict:
    from tkgs_lib.appliance.ssh import SshRunner
    from tkgs_lib.site import load_site
    from tkgs_lib.stages import verify
    from tkgs_lib.stages.flow import StageRun

    sim, site_file, folder = boot(work / "verify")
    try:
        management = sim.management_address
        with DelayProxy(sim.appliance, management, [(management, 22), (management, 5556)]) as proxy:
            ssh_port, api_port = proxy.ports
            known = work / "verify" / "proxied_known_hosts"
            known.write_text("".join(line.replace(management, f"[{management}]:{ssh_port}", 1)
                                     for line in sim.known_hosts().splitlines(True)))
            data = yaml.safe_load(site_file.read_text())
            data["haproxy"]["dataplane_port"] = api_port  # the API through the proxy; its address stays
            site_file.write_text(yaml.safe_dump(data))
            os.environ["TKGS_HAPROXY_ROOT_PASSWORD"] = ROOT_PASSWORD
            os.environ["TKGS_HAPROXY_DATAPLANE_PASSWORD"] = DATAPLANE_PASSWORD

            def read_once(run) -> float:
                start = time.perf_counter()
                facts = verify.read_facts(run)
                elapsed = time.perf_counter() - start
                failed = [c.check for c in verify.checks(run, facts) if c.status in ("failed", "not checked")]
                if failed:
                    raise SystemExit(f"the benchmark's appliance is not healthy: {failed}")
                return elapsed

            def work_in_lab():
                run = StageRun("verify", load_site(site_file), folder, progress=False)
                times = {0.0: [], delay: []}
                logins = {}
                for wanted in (0.0, delay):  # the login, once per stage, timed apart
                    proxy.delay = wanted
                    start = time.perf_counter()
                    session = SshRunner(management, port=ssh_port, password=ROOT_PASSWORD,
                                        known_hosts=str(known)).connect()
                    logins[wanted] = time.perf_counter() - start
                    session.close()
                proxy.delay = 0.0
                run.appliance = SshRunner(management, port=ssh_port, password=ROOT_PASSWORD,
                                          known_hosts=str(known)).connect()
                read_once(run)  # warm: imports, the CA's parse
                execs_before = run.appliance.execs
                read_once(run)
                execs = run.appliance.execs - execs_before
                for _ in range(rounds):
                    for wanted in (0.0, delay, delay, 0.0):  # ABBA
                        proxy.delay = wanted
                        times[wanted].append(read_once(run))
                run.close()
                return times, logins, execs
            times, logins, execs = sim.in_lab(work_in_lab)
    finally:
        sim.stop()
    direct, slow = statistics.median(times[0.0]), statistics.median(times[delay])
    rtt = 2 * delay
    return {"direct": direct, "delayed": slow, "round_trips": (slow - direct) / rtt, "execs": execs,
            "login_round_trips": (logins[delay] - logins[0.0]) / rtt}


def measure_repair(work: Path) -> dict:
    from tkgs_lib.site import load_site
    from tkgs_lib.stages.flow import StageRun

    sim, site_file, folder = boot(work / "repair", faults={"service_ip_range": "10.64.0.1/23,10.64.1.0/24"})
    os.environ["TKGS_HAPROXY_ROOT_PASSWORD"] = ROOT_PASSWORD
    os.environ["TKGS_HAPROXY_DATAPLANE_PASSWORD"] = DATAPLANE_PASSWORD
    try:
        def work_in_lab():
            run = StageRun("repair", load_site(site_file), folder, progress=False)
            start = time.perf_counter()
            run.connect_appliance()
            facts = run.read()
            plan = run.plan(facts)
            run.carry_out(plan, True)
            run.reports()
            elapsed = time.perf_counter() - start
            execs = run.appliance.execs
            run.close()
            return elapsed, execs
        elapsed, execs = sim.in_lab(work_in_lab)
    finally:
        sim.stop()
    return {"seconds": elapsed, "execs": execs}


def demo_times(work: Path) -> list:
    """The demo run here (its simulators, its stages with apply): each stage's title and seconds."""
    from tkgs_lib.demo import run_demo

    return [(result.stage.title, result.seconds) for result in run_demo(work / "demo").results]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay-ms", type=float, default=25.0, help="delay each way (default 25 ms)")
    parser.add_argument("--rounds", type=int, default=5, help="ABBA rounds (default 5)")
    parser.add_argument("--demos", type=int, default=3, help="demo runs for the stage times (default 3)")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo's stage times")
    args = parser.parse_args(argv)
    from tkgs_simulators.appliance import available

    reason = available()
    if reason:
        raise SystemExit(f"the benchmark needs the appliance simulator: {reason}")
    delay = args.delay_ms / 1000
    missed = []
    with tempfile.TemporaryDirectory(prefix="tkgs-bench-link-") as tmp:
        work = Path(tmp)
        v = measure_verify(work, delay, args.rounds)
        print(f"verify's read, median of {args.rounds * 2}: {v['direct'] * 1000:.0f} ms direct, "
              f"{v['delayed'] * 1000:.0f} ms with {args.delay_ms:g} ms each way (a round trip {2 * args.delay_ms:g} ms)")
        print(f"  added: {v['round_trips']:.2f} round trips (target at most {ROUND_TRIPS_TARGET:g}); "
              f"SSH execs per verify read: {v['execs']}; the SSH login (once per stage): "
              f"{v['login_round_trips']:.1f} round trips")
        if v["round_trips"] > ROUND_TRIPS_TARGET:
            missed.append("verify's read round trips")
        r = measure_repair(work)
        print(f"repair of the article's line (read, plan, apply, read again, reports): {r['seconds']:.2f} s, "
              f"SSH execs: {r['execs']}")
        if not args.no_demo:
            ratios = []
            for run in range(args.demos):
                rows = demo_times(work / f"demo-{run}")
                print(f"the demo's stages (run {run + 1}): "
                      + ", ".join(f"{title} {seconds:.1f} s" for title, seconds in rows))
                verify_s = next(s for t, s in rows if t.startswith("Verify"))
                repair_s = next(s for t, s in rows if t.startswith("Repair"))
                ratios.append(repair_s / verify_s)
            ratio = statistics.median(ratios)
            print(f"  repair / verify: {ratio:.2f}, the median of {', '.join(f'{r:.2f}' for r in ratios)} "
                  f"(target at most {REPAIR_TARGET:g})")
            if ratio > REPAIR_TARGET:
                missed.append("the demo's repair against its verify")
    if missed:
        print(f"missed: {', '.join(missed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
