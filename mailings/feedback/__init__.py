"""ESP feedback: anymail's tracking webhooks in, the ledger and suppression out.

- urls.py: anymail's webhook views, each wrapped by the intake.
- intake.py: each post's events stored raw, once per (ESP, event id), all or none, and queued;
  the web request does nothing more, so an ESP's burst is answered fast. Concurrent posts
  share one INSERT, one commit and one task (a group commit). A bad post gets a 4xx.
- kinds.py: what an event means (delivered, hard or soft bounce, complaint, …), per ESP.
- processing.py: `tracking_events_process` on the `tracking` queue applies a batch of them to
  their Deliveries and suppresses supporters; `tracking_event_sweep` re-queues what Redis lost.
"""
