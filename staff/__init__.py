"""The staff domain: named tokens, the audit log as read, backups, health and metrics."""
