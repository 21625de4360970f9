"""The HTTP gateway: JSON API with OpenAPI docs, authentication, per-commune authorisation."""
