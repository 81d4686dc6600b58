"""Alerts: Standard Webhooks sent from a transactional outbox in the warehouse."""
