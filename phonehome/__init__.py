"""The instance side: the reference phone-home client, its spool, and the fleet simulator."""
