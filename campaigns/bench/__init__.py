"""The sign benchmark (`manage.py bench_sign`): a gunicorn server and wrk with sign.lua."""
