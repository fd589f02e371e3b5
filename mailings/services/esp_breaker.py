"""The circuit breaker on ESP feedback (complaint and hard-bounce rates of a mailing)."""


def mailing_check_esp_feedback(*, mailing_id: int) -> bool:
    """Pause the mailing if its ESP feedback passes the thresholds; return whether it paused.

    A placeholder: the breaker itself is built in its own commit (issue 12, item 2), which
    replaces this module. mailings.tracking.processing calls it after each newly applied hard
    bounce or complaint.
    """
    return False
