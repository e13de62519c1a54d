"""Processes and commands: the worker, the CSV importer, copy-db, the demo seed, housekeeping and retention."""
