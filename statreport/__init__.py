"""The composition root: the CLI and the server that runs ingest, analytics and scheduler."""
