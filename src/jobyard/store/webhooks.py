"""The SQL store's webhook part: the outbox and delivery log. Mixed into SqlStore."""

from __future__ import annotations


class WebhookStore:
    pass
