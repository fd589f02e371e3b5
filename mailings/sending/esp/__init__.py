"""ESP-specific fast paths beside anymail's per-message sending (see base.py)."""

from mailings.sending.esp.base import BatchSender, MessageResult
from mailings.sending.esp.registry import batch_sender_for

__all__ = ["BatchSender", "MessageResult", "batch_sender_for"]
