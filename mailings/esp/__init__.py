"""ESP-specific fast paths beside anymail's per-message sending (see base.py)."""

from mailings.esp.base import BatchSender, MessageResult
from mailings.esp.registry import batch_sender_for

__all__ = ["BatchSender", "MessageResult", "batch_sender_for"]
