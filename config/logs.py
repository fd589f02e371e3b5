"""Logs as events with keys: JSON lines in production, readable lines on a laptop and in tests.

Every record goes through structlog's ProcessorFormatter, those of `logging.getLogger` as much
as structlog's own, so each line carries what the code bound with `structlog.contextvars`
where it was logged: the request id (django-structlog's RequestMiddleware), the Celery task id
(django-structlog's worker step, config/celery_app.py), and the mailing, batch and deliveries
the send path binds (mailings/sending/). Settings call `logging_settings` and
`structlog_configure`; the Celery worker applies the same LOGGING (config/celery_app.py).
"""

import sys

import structlog
import structlog.tracebacks

LOG_FORMATS = ("json", "console")

# What every record gets, from structlog or from the standard library: the context bound in
# contextvars, the logger's name, the level and the time.
_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _without_formatter_attributes(logger, method_name, event_dict):
    """Drop what another handler's Formatter left on a record (its text, its time): not extra."""
    event_dict.pop("message", None)
    event_dict.pop("asctime", None)
    return event_dict


def logging_settings(*, log_format: str, level: str) -> dict:
    """Return Django's LOGGING: one handler to stderr, its lines in `log_format`."""
    if log_format not in LOG_FORMATS:
        raise ValueError(
            f"RALLY_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}"
        )
    # A standard-library record's `extra={…}` becomes keys of the line too.
    foreign_pre_chain = [*_SHARED, structlog.stdlib.ExtraAdder(), _without_formatter_attributes]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    # A traceback as a structure, so that it stays one line; without each
                    # frame's local variables, which hold addresses, tokens and passwords.
                    structlog.processors.ExceptionRenderer(
                        structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
                    ),
                    structlog.processors.JSONRenderer(),
                ],
                "foreign_pre_chain": foreign_pre_chain,
            },
            "console": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    # Colours only on a terminal, not in a file or a test's captured output.
                    # Plain tracebacks: rich's (the default when installed) print each frame's
                    # locals and take seconds to render, which made /healthz slow to fail.
                    structlog.dev.ConsoleRenderer(
                        colors=sys.stderr.isatty(),
                        exception_formatter=structlog.dev.plain_traceback,
                    ),
                ],
                "foreign_pre_chain": foreign_pre_chain,
            },
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": log_format}},
        "root": {"handlers": ["console"], "level": level},
    }


def structlog_configure() -> None:
    """Send structlog's own events (django-structlog's) through the standard library's handlers."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.UnicodeDecoder(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
