"""HTTP only: the shared web parts (templates, security, static files, components, Notify callbacks) and the
patient pages, the staff console and the integration API beneath."""
