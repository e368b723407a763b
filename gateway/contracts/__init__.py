"""The contracts the gateway publishes for its partners' integrators, and the kit that checks messages against them.

- :mod:`gateway.contracts.formats`: the JSON, FHIR and CSV formats each partner sends and receives (from the
  adapters' descriptors);
- :mod:`gateway.contracts.golden`: the golden examples, valid and invalid, of every partner;
- :mod:`gateway.contracts.asyncapi`: the AsyncAPI 3 document of every Kafka channel, assembled from the
  descriptors and the registry, with :mod:`~gateway.contracts.topics` (topic names, channel ids),
  :mod:`~gateway.contracts.messages` (headers, keys, one message per kind of body),
  :mod:`~gateway.contracts.components` (the schemas hoisted into ``components``), :mod:`~gateway.contracts.bodies`
  (the bodies the gateway itself writes) and :mod:`~gateway.contracts.channel_check` (a message against its
  channel);
- :mod:`gateway.contracts.publication`: writes ``contracts/`` (schemas, examples, the AsyncAPI document);
- :mod:`gateway.contracts.kit`: ``gateway contracts check`` and the dry-run decision of a partner's message.
"""
