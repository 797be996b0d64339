"""The staff console (SPEC §12): server-rendered pages over the same services as the API."""
