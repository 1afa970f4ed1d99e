"""The link to the controller: MQTT, the on-disk outbox, envelopes and command dispatch."""
