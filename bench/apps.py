"""The benchmarks: `manage.py bench_send`, `bench_sign` and `bench_audience`, and what they drive.

A development tool, kept apart from the product so that supporters, campaigns, mailings and
config never import it: the app is installed by the local and test settings only, never by the
production settings. bench_send sends a synthetic mailing through real Celery workers
(worker_processes.py) to a fake ESP (espfakes/); bench_sign signs a petition through the web
server as deployed (web_server.py) with wrk (wrk.py, sign.lua), over synthetic supporters
made once and kept (synthetic.py); bench_audience times the mailing form's audience count over
the same supporters. Each prints one JSON line, which `make bench` and outside scripts read.
"""

from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "bench"
    verbose_name = "Benchmarks"
