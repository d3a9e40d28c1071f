"""The HAProxy appliance, the second transport: commands run on it, what they tell, and its APIs.

    commands      the seam: a CommandRunner runs one command with a timeout (over SSH for a real
                  appliance; a RecordedRunner answers from recorded output in tests); a Fact is a
                  command plus a pure parser of its output; every fact of a read in one exec
    ssh           the real runner: one SSH session, host key checked, faults as one sentence
    facts         the facts the verify and repair stages read: interfaces, failed units, the
                  units and their logs, the network files, routes, rules, pings
    releases      what each appliance release (v0.1.7 to v0.2.0) writes, read at its tag
    checks        the verify stage's rows: pure functions of the facts and the network plan
    repair        the repair stage's plan and its apply (backup, replace, restart, rollback)
    dataplane     the Data Plane API's /v2/info over verified TLS
    load_balancer HAProxy's configuration and runtime through the Data Plane API, GET only
    properties    the vApp properties the deploy stage sends, checked against the OVA
    ca            the appliance's CA: collected, decoded, checked against its key
    supervisor_endpoint  one verified TLS handshake with the Supervisor's virtual IP
    supervisor_checks    the Supervisor through the load balancer, as rows like verify's
"""
