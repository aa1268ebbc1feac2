"""The broker: one loop that owns the sockets, its routing table, watchdog and supervisor."""
