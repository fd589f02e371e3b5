"""Celery's command line, without what only its interactive shells import.

    python worker.py -A config.celery_app worker -Q transactional,bulk,tracking,webhooks

is `celery -A config.celery_app worker …`, every option the same. A prefork worker's pool
processes are copies of its main process, so each module the main process imports is counted in
the resident memory of every process (the worker's budget and what each leaves out are in
docs/performance.md, Memory):

- click-repl and prompt_toolkit, which Celery's command line imports at start-up for the
  interactive `celery amqp repl` and `celery shell`: a worker never opens them, and the
  `celery` command itself keeps them for the operator.
- rich, which structlog imports when it is installed (the development tools bring it): Rally's
  log lines print tracebacks plainly (config/logs.py), so structlog never calls it.
- pygments, which Celery's command line imports when installed, to colour what `celery inspect`
  prints.
"""

import sys
import types


def _register_no_repl(group, name="repl") -> None:
    """Stand in for click_repl.register_repl: the `repl` command is left out."""


click_repl = types.ModuleType("click_repl")
click_repl.register_repl = _register_no_repl
sys.modules["click_repl"] = click_repl
# `import rich` raises ImportError, as where it is not installed: structlog and Celery do without.
sys.modules["rich"] = None
sys.modules["pygments"] = None

from celery.__main__ import main  # noqa: E402 -- after the stand-ins above

if __name__ == "__main__":
    main()
