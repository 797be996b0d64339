"""Signed webhooks (SPEC §14 v3): endpoints, their deliveries and the background sender."""
