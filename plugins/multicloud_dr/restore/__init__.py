"""Restore a backup into a MySQL server: streamed, parallel, never half-applied, verified."""
