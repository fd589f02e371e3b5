"""Celery's command line, without the modules a worker never uses.

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
- PyYAML, which kombu imports when installed to offer a YAML serializer (Rally's tasks are
  JSON), and greenlet, which Celery imports when installed to tell greenlets apart (only the
  gevent and eventlet pools have any, and with those it is kept): the development tools
  install both, `requirements.lock` neither.
- charset_normalizer (or chardet, which it tries first), which requests imports to guess the
  encoding of a response that names none. Without it requests reads such a body as UTF-8
  (`Response.apparent_encoding`); the worker reads ESPs' and webhook receivers' JSON, which
  says its encoding or is UTF-8.
"""

import sys
import types
import warnings


def _register_no_repl(group, name="repl") -> None:
    """Stand in for click_repl.register_repl: the `repl` command is left out."""


click_repl = types.ModuleType("click_repl")
click_repl.register_repl = _register_no_repl
sys.modules["click_repl"] = click_repl
# `import rich` raises ImportError, as where it is not installed, and each importer does without.
for optional in ("rich", "pygments", "yaml", "charset_normalizer", "chardet"):
    sys.modules[optional] = None
if not any(pool in argument for argument in sys.argv for pool in ("gevent", "eventlet")):
    sys.modules["greenlet"] = None
# requests warns once that it has no encoding guesser: it needs none here (see above).
warnings.filterwarnings("ignore", message="Unable to find acceptable character detection")

from celery.__main__ import main  # noqa: E402 -- after the stand-ins above

if __name__ == "__main__":
    main()
