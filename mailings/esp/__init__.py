"""ESP-specific fast paths beside anymail's per-message sending (see base.py)."""

from .base import BatchSender, MessageResult
from .registry import batch_sender_for

__all__ = ["BatchSender", "MessageResult", "batch_sender_for"]
