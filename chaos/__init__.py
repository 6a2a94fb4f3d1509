"""Chaos testing for Chronik: real clients against real chronik-server processes under faults.

Modules:
  history    the history model (what every client did and saw), JSON (de)serialisation
  checker    one check per anomaly over a history, and check(history) -> Report
  cluster    the server processes of a scenario (one node, or three forming a Raft cluster)
  faults     faults (kill -9, SIGSTOP/SIGCONT, SIGTERM restart; disk faults through the server's
             test-only fault layer and on a stopped node's segments; cluster faults on a
             partition's leader or follower, rolling or random nodes) and the seeded schedule
  segments   segment files read from the outside (record batches, record values and positions)
  workloads  producer / consumer processes that record every outcome, and the final drain
  scenarios  the named scenarios and their quick / long parameters
  run        command line: run scenarios, print the table, keep failed histories

Entry point: scripts/chaos.sh (sets up the venv, then runs `python -m chaos.run`).
Only history and checker are needed to check a saved history; they import no client library.
"""
