"""Customers, their order forms and add-ons, and their licence keys (the admin side)."""
