"""A passwordless hospital appointment hub."""
