"""Compliance analytics over stored Statistics Reports (entitlements, usage, episodes)."""
