"""Phone-home ingest: the report and attestation endpoints, and the group commit of reports."""
