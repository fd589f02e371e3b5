"""The benchmark's web server, started as a deployment runs it, and a browser's first visit."""

import html.parser
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http.cookies import SimpleCookie
from pathlib import Path

from django.core.management.base import CommandError

from bench.worker_processes import current_database_url

ROOT = Path(__file__).resolve().parents[1]


SERVERS = ("granian", "gunicorn")


def server_options_settle(options: dict, *, cores: int) -> None:
    """Fill in a web benchmark's server options as the server will run: workers default to
    `cores`, only gunicorn has a worker class, and only its gthread workers have threads.

    Shared by bench_sign and bench_webhooks, so both report the layout they measured.
    """
    options["workers"] = options["workers"] or cores
    if options["server"] != "gunicorn":
        options["worker_class"] = ""
    elif options["worker_class"] != "gthread":
        options["threads"] = 1


class WebServer:
    """granian or gunicorn on a free local port with the production settings, as deployed.

    granian is what the Dockerfile runs; gunicorn is there to compare (its `worker_class`
    sync or gthread). `threads` are granian's blocking threads or gunicorn's gthread threads,
    per worker process.
    """

    def __init__(
        self,
        *,
        server: str,
        workers: int,
        threads: int,
        redis_url,
        log_path,
        worker_class="",
        extra_env: dict[str, str] | None = None,
    ):
        if server not in SERVERS:
            raise CommandError(f"Unknown server {server!r}: choose one of {', '.join(SERVERS)}.")
        self.server = server
        self.worker_class = worker_class
        self.workers = workers
        self.threads = threads
        self.redis_url = redis_url
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None
        # The basic-auth "user:password" the server's ESP webhooks demand.
        self.webhook_secret = "bench:" + secrets.token_urlsafe(24)

    def start(self, timeout: float = 60) -> str:
        """Start the server and return its base URL once it serves the petition list."""
        listener = socket.create_server(("127.0.0.1", 0), backlog=2048)
        port = listener.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DATABASE_URL": current_database_url(),
            "SECRET_KEY": secrets.token_urlsafe(50),
            # The production settings require these (throwaway here); a benchmark posting
            # webhooks signs in with `webhook_secret`, or passes its own in extra_env.
            "ANYMAIL_WEBHOOK_SECRET": self.webhook_secret,
            "RALLY_SUPPRESSION_HASH_KEY": secrets.token_urlsafe(32),
            # Required too; the benchmark sends no bulk mail from the server.
            "RALLY_SENDERS": '[{"name": "Rally bench", "email": "bench@rally.example"}]',
            "RALLY_ORGANISATION_NAME": "Rally bench",
            "RALLY_ORGANISATION_ADDRESS": "1 Example Street, London N1 1AA, United Kingdom",
            "DJANGO_DEBUG": "false",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            # Plain http on localhost: no redirect to https, and a Secure cookie would never be
            # sent back.
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_SECURE_COOKIES": "false",
            "SITE_URL": url,
            "DJANGO_CSRF_TRUSTED_ORIGINS": url,
            "REDIS_URL": self.redis_url,
            # Every request comes from one IP, so that limit would stop the run; 0 = off. The
            # per-email limit stays on, at its default, and is paid for: no signer repeats.
            "RALLY_SIGN_LIMIT_PER_IP": "0",
            "RALLY_CAPTCHA_PROVIDER": "",
            # The benchmark petition sends no confirmation; should signing ever send mail
            # from the request, none leaves the machine.
            "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
            "LOG_LEVEL": "WARNING",
            "ANYMAIL": "{}",
            **self.extra_env,
        }
        _collect_static(env)
        if self.server == "gunicorn":
            # The socket is handed over (fd://), so no other process can take the port between
            # choosing it and gunicorn binding it.
            command = [
                sys.executable, "-m", "gunicorn", "config.wsgi:application",
                "--bind", f"fd://{listener.fileno()}",
                "--workers", str(self.workers),
                "--worker-class", self.worker_class,
                *(["--threads", str(self.threads)] if self.worker_class == "gthread" else []),
                # The default control socket is one path per user, shared by every gunicorn.
                "--no-control-socket",
                "--log-level", "warning",
            ]  # fmt: skip
            inherited = [listener.fileno()]
        else:
            # granian binds the port itself: it is freed just before, so another process could
            # take it in between, and the start then fails with granian's own message.
            listener.close()
            command = [
                sys.executable, "-m", "granian", "--interface", "wsgi",
                "config.wsgi:application",
                "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(self.workers),
                "--blocking-threads", str(self.threads),
                "--backlog", "2048",
                "--no-ws",
                "--log-level", "warning",
            ]  # fmt: skip
            inherited = []
        with listener, self.log_path.open("w") as log:
            self.process = subprocess.Popen(  # noqa: S603 -- our own interpreter and arguments
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=inherited,
                # Its own process group, so the master and its workers can be killed together.
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CommandError(f"{self.server} exited:\n{self.log()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/petitions/", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return url
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        # Not left running: nobody would stop a server whose start failed.
        self.stop()
        raise CommandError(
            f"{self.server} did not answer within {timeout:.0f} s:\n{self.log()[-3000:]}"
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _collect_static(env: dict[str, str]) -> None:
    """Collect the static files, as the image does when it is built.

    The production settings serve them through WhiteNoise's manifest, and a page naming a file
    the manifest lacks fails with a 500. collectstatic copies only what changed since its last
    run, so this is quick after the first time.
    """
    collected = subprocess.run(  # noqa: S603 -- our own interpreter and arguments
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if collected.returncode:
        raise CommandError(f"collectstatic failed:\n{collected.stderr[-3000:]}")


class _InputParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.inputs: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "input" and attributes.get("name"):
            self.inputs[attributes["name"]] = attributes.get("value") or ""


def fetch_csrf(page_url: str) -> tuple[str, str]:
    """Load the page as a browser would; return its csrftoken cookie and the form's token."""
    with urllib.request.urlopen(page_url, timeout=10) as response:  # noqa: S310
        cookies = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookies.load(header)
        page = response.read().decode()
    parser = _InputParser()
    parser.feed(page)
    token = parser.inputs.get("csrfmiddlewaretoken")
    if "csrftoken" not in cookies or not token:
        raise CommandError(f"No CSRF cookie or token on {page_url}.")
    return cookies["csrftoken"].value, token
