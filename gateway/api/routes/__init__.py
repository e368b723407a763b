"""HTTP routes: thin — parse, call the pipeline or a service, shape the response."""
