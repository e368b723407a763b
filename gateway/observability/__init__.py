"""What the people who run the gateway see of it: Prometheus metrics (:mod:`.metrics`), OpenTelemetry traces
(:mod:`.tracing`) and the pipeline's hooks into both (:mod:`.observer`). See docs/operations.md."""
