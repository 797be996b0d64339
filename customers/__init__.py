"""Customers, their order forms and add-ons, licence keys and instances (the admin side)."""
