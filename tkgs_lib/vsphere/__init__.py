"""vCenter, one transport: its client and the resources the stages read and change through it.

    the client     tls (what is trusted), rest (the vAPI REST session), connection (SOAP + REST
                   login), inventory (the site's objects by name), tasks (waiting for a task, and
                   a vSphere fault as one sentence), content_api (the content-library endpoints)
    the resources  portgroups, storage, library (+ upload), vm (+ ovf_deploy, ovf_import), and
                   namespace_management (Workload Management over /api): each reads its facts into a value,
                   plans with a pure function of (site or network plan, facts), and changes
                   through one small operations object
"""
