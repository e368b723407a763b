"""The HTTP API (FastAPI): partner messages, status, inbox, consents, tokens, health."""

from gateway.api.app import create_app, openapi_document

__all__ = ["create_app", "openapi_document"]
