"""ESP feedback: anymail's tracking webhooks in, the ledger and suppression out.

- intake.py: the `tracking` signal receiver. It stores each event raw, once per (ESP, event
  id), and queues it; the web request does nothing more, so an ESP's burst is answered fast.
  Concurrent posts share one INSERT, one commit and one task (a group commit).
- kinds.py: what an event means (delivered, hard or soft bounce, complaint, …), per ESP.
- processing.py: `tracking_events_process` on the `tracking` queue applies a batch of them to
  their Deliveries and suppresses supporters; `tracking_event_sweep` re-queues what Redis lost.
"""
