"""The sign benchmark (`manage.py bench_sign`): a web server as deployed and wrk with sign.lua."""
