"""Outbound webhooks: Standard Webhooks signatures and the SSRF guard."""
