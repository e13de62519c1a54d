"""The integration API under /api/v1 for the hospital's PAS, and its OpenAPI document."""
