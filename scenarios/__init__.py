"""Operator tools over recorded runs: ``runs`` (a run as an operator reads it), ``replay`` (live or
offline), ``submit`` (a replay that really submits, through the worker's exactly-once path) and
``report``. The regression catalog and its harness are the ``scenarios.catalog`` package.
"""
