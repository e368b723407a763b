"""What privacy officers ask of the gateway and what keeps their answers quick.

- :mod:`gateway.privacy.office`: art. 15 reports, records of processing (art. 30), the review queue, the audit
  log's integrity status and erasure (art. 17), every question itself audited;
- :mod:`gateway.privacy.activity`: the last 30 days of the audit log counted per flow and day, kept in the store;
- :mod:`gateway.privacy.overview`: the workers' task that keeps those counts and the integrity status current.
"""
