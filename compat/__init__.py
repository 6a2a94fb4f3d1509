"""Client compatibility suites run against a real chronik-server (scripts/compat.sh).

See docs/compatibility.md for what is run, the results and the reason for every failure.
"""
