"""Outbound delivery channels: signed webhooks and e-mail through SMTP."""
