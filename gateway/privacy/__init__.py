"""What privacy officers ask of the gateway and what keeps their answers quick.

- :mod:`gateway.privacy.office`: the privacy office the API, the console and the CLI ask, every question itself
  audited; it answers through :mod:`~gateway.privacy.reports` (art. 15 reports, consent histories, records of
  processing, art. 30), :mod:`~gateway.privacy.review` (the review queue), :mod:`~gateway.privacy.log_reading`
  (reads of the audit log), :mod:`~gateway.privacy.erasure` (art. 17) and :mod:`~gateway.privacy.integrity` (the
  log's integrity status), for the :mod:`~gateway.privacy.officer` who asks;
- :mod:`gateway.privacy.activity`: the last 30 days of the audit log counted per flow and day, kept in the store;
- :mod:`gateway.privacy.overview`: the workers' task that keeps those counts and the integrity status current.
"""
