"""What the services exchange: event envelopes, event payloads, RPC schemas and errors."""
