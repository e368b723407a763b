"""People's consents: the registry that stores each FHIR Consent as an immutable version and withdraws it
(:mod:`gateway.consents.service`), and FHIR Consent R4/R5 on the wire (:mod:`gateway.consents.fhir`)."""
