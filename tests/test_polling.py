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
                           "60 s (workload_management.timeout is 60): vCenter says: WARNING: Deploying the control "
                           "plane. Check the CA chain.")


def test_removing_ends_the_wait():
    wait, _ = judge()
    with pytest.raises(SupervisorFailed, match="is being removed"):
        wait.done(info("REMOVING"))
