"""The patient's pages: sign-in, appointments, letters, messages, preferences, sites (and the demo's dev outbox)."""
