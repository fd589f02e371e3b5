"""ESP-specific fast paths beside anymail's per-message sending (see base.py)."""

from .base import BatchSender, batch_sender_for

__all__ = ["BatchSender", "batch_sender_for"]
