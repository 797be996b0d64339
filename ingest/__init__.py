"""Phone-home ingest: the report endpoint, customers, licence keys and durable storage."""
