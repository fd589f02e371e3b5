"""ESP feedback: anymail's tracking webhooks in, the ledger and suppression out.

- intake.py: the `tracking` signal receiver. It stores each event raw, once per (ESP, event
  id), and queues it; the web request does nothing more, so an ESP's burst is answered fast.
- kinds.py: what an event means (delivered, hard or soft bounce, complaint, …), per ESP.
- processing.py: `tracking_event_process` on the `tracking` queue applies it to its Delivery
  and suppresses the supporter; `tracking_event_sweep` re-queues what Redis lost.
"""
