"""The one wait loop, and the Supervisor's judge, on a clock of the test's own: no waiting."""

from __future__ import annotations

import pytest
from com.vmware.vapi.std_client import LocalizableMessage
from com.vmware.vcenter.namespace_management_client import Clusters

from tkgs_lib.errors import SupervisorFailed, VSphereError
from tkgs_lib.polling import Clock, wait_until
from tkgs_lib.vsphere.namespace_management import SupervisorWait


class FakeClock(Clock):
    def __init__(self):
        self.t, self.slept = 0.0, []
        super().__init__(now=lambda: self.t, sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.t += seconds


def test_the_loop_returns_the_first_value_that_is_done():
    clock, values = FakeClock(), iter([1, 2, 3, 4])
    assert wait_until(lambda: next(values), lambda v: v == 3, timeout=10, interval=1,
                      timed_out=lambda v, e: AssertionError(), clock=clock) == 3
    assert clock.slept == [1, 1]


def test_the_interval_grows_to_its_ceiling_and_the_last_read_falls_on_the_deadline():
    clock = FakeClock()
    with pytest.raises(VSphereError, match=r"still 'x' after 10\.0 s"):
        wait_until(lambda: "x", lambda v: False, timeout=10, interval=1, max_interval=3, clock=clock,
                   timed_out=lambda v, elapsed: VSphereError(f"still {v!r} after {elapsed:.1f} s"))
    assert clock.slept[:4] == [1, 1.5, 2.25, 3] and clock.t == 10  # never past the deadline
    assert sum(clock.slept) == 10


def test_a_judge_that_raises_ends_the_wait_with_its_error():
    def done(value):
        raise VSphereError("the task failed: no space left.")
    with pytest.raises(VSphereError, match="no space left"):
        wait_until(lambda: 1, done, timeout=None, timed_out=lambda v, e: AssertionError(), clock=FakeClock())


def info(status: str, kubernetes: str = "WARNING", *said: str) -> Clusters.Info:
    messages = [Clusters.Message(severity="ERROR" if status == "ERROR" else "WARNING",
                                 details=LocalizableMessage(id="x", default_message=m, args=[])) for m in said]
    return Clusters.Info(config_status=status, kubernetes_status=kubernetes, messages=messages)


def judge(grace=5.0, timeout=60.0):
    clock = FakeClock()
    return SupervisorWait("domain-c8", timeout, grace, lambda m: "Check the CA chain.", clock), clock


def test_running_and_ready_is_done_and_running_alone_is_not():
    wait, _ = judge()
    assert not wait.done(info("CONFIGURING"))
    assert not wait.done(info("RUNNING", "WARNING"))
    assert wait.done(info("RUNNING", "READY"))


def test_an_error_within_the_grace_passes_and_is_kept_for_the_record():
    wait, clock = judge(grace=5)
    assert not wait.done(info("ERROR", "ERROR", "Waiting for the control plane VMs."))
    clock.t = 4
    assert not wait.done(info("ERROR", "ERROR", "Waiting for the control plane VMs."))
    clock.t = 6
    assert not wait.done(info("CONFIGURING"))
    assert wait.passed_errors == ["ERROR for 6.0 s, then CONFIGURING: ERROR: Waiting for the control plane VMs."]
    clock.t = 20  # a second ERROR gets a grace of its own
    assert not wait.done(info("ERROR", "ERROR", "again"))
    clock.t = 24
    assert not wait.done(info("ERROR", "ERROR", "again"))


def test_an_error_that_lasts_past_the_grace_fails_with_vcenters_words_and_what_to_check():
    wait, clock = judge(grace=5)
    wait.done(info("ERROR", "ERROR", "Load balancer 'haproxy': its certificate is not trusted."))
    clock.t = 5
    with pytest.raises(SupervisorFailed) as failed:
        wait.done(info("ERROR", "ERROR", "Load balancer 'haproxy': its certificate is not trusted."))
    assert str(failed.value) == (
        "Workload Management on cluster domain-c8 has been in ERROR for 5.0 s, longer than the 5 s an error may last "
        "while vCenter retries (workload_management.error_grace): vCenter says: ERROR: Load balancer 'haproxy': its "
        "certificate is not trusted. Check the CA chain.")


def test_a_timeout_names_the_status_the_messages_and_the_site_field():
    wait, _ = judge()
    failed = wait.timed_out(info("CONFIGURING", "WARNING", "Deploying the control plane."), 60)
    assert str(failed) == ("Workload Management on cluster domain-c8 is still CONFIGURING, Kubernetes WARNING after "
                           "waiting 60 s (workload_management.timeout is 60): vCenter says: WARNING: Deploying the "
                           "control plane. Check the CA chain.")


def test_the_default_timeout_outlasts_a_real_enable_whose_errors_pass_for_many_minutes():
    """A real enable takes 20 to 40 minutes or more, with ERRORs that pass for many minutes (William Lam's
    notes: about 25): on the site's defaults the wait rides it out, then reports RUNNING."""
    from tkgs_lib.site.model import WorkloadManagement

    defaults = {f.name: f.default for f in WorkloadManagement.__dataclass_fields__.values()}
    assert defaults["timeout"] >= 7200 and defaults["error_grace"] >= 1500  # as patient as VMware's own tooling
    clock = FakeClock()
    wait = SupervisorWait("domain-c8", defaults["timeout"], defaults["error_grace"], lambda m: "", clock)
    seen = iter([(0, info("CONFIGURING")), (600, info("ERROR", "ERROR", "Waiting for the control plane VMs.")),
                 (1800, info("ERROR", "ERROR", "Waiting for the control plane VMs.")),  # 20 minutes of ERROR
                 (2100, info("CONFIGURING")), (2700, info("RUNNING", "READY"))])

    def read():
        clock.t, value = next(seen)
        return value
    done = wait_until(read, wait.done, timeout=defaults["timeout"], timed_out=wait.timed_out, interval=1,
                      clock=clock)
    assert done.config_status == "RUNNING" and clock.t == 2700  # 45 minutes: a healthy enable, not a failure
    assert wait.passed_errors == ["ERROR for 1500 s, then CONFIGURING: ERROR: Waiting for the control plane VMs."]


def test_a_timeout_while_still_configuring_says_how_long_it_waited_and_what_vcenter_said_last():
    """Still CONFIGURING at the deadline is no failure of the Supervisor: vCenter goes on with it (a rerun
    waits on), so it is its own error; in ERROR at the deadline it failed as an ERROR fails."""
    from tkgs_lib.errors import SupervisorStillConfiguring

    clock = FakeClock()
    wait = SupervisorWait("domain-c8", 7200, 1500, lambda m: "Check the Supervisor's messages.", clock)
    said = iter(["Deploying the control plane.", "Configuring the load balancer."])
    with pytest.raises(SupervisorStillConfiguring) as still:
        wait_until(lambda: info("CONFIGURING", "WARNING", next(said, "Waiting for the load balancer.")), wait.done,
                   timeout=7200, timed_out=wait.timed_out, interval=5, max_interval=60, clock=clock)
    assert clock.t == 7200
    assert str(still.value) == ("Workload Management on cluster domain-c8 is still CONFIGURING, Kubernetes WARNING "
                                "after waiting 2 h 0 min (7,200 s; workload_management.timeout is 7200): vCenter "
                                "says: WARNING: Waiting for the load balancer. Check the Supervisor's messages.")
    ready_soon = wait.timed_out(info("RUNNING", "WARNING"), 150)
    assert isinstance(ready_soon, SupervisorStillConfiguring)
    assert "is still RUNNING, Kubernetes WARNING after waiting 2 min (150 s; " in str(ready_soon)
    in_error = wait.timed_out(info("ERROR", "ERROR", "no route to host"), 7200)
    assert isinstance(in_error, SupervisorFailed) and not isinstance(in_error, SupervisorStillConfiguring)


def test_removing_ends_the_wait():
    wait, _ = judge()
    with pytest.raises(SupervisorFailed, match="is being removed"):
        wait.done(info("REMOVING"))
