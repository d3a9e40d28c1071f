"""The fleet's Airflow DAG: put this file in Airflow's dags folder (on the DAG processor and every worker).

TKGS_FLEET_FILE names the fleet file (default: /srv/tkgs/fleet.yaml); its site files, and the run folder
on shared storage, must be at the same paths on every worker. See README.md, "A fleet on Apache Airflow".
"""

import os

from tkgs_lib.fleet.airflow import fleet_dag

dag = fleet_dag(os.environ.get("TKGS_FLEET_FILE", "/srv/tkgs/fleet.yaml"))
