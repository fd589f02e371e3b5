FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# Runtime dependencies only: requirements-dev.lock adds the test and lint tools.
COPY requirements.lock .
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
RUN DJANGO_SETTINGS_MODULE=config.settings.local python manage.py collectstatic --noinput
EXPOSE 8000
# granian: HTTP handled in Rust, and 16 threads per worker, so that concurrent signatures share
# a transaction (config/lib/group_commit.py). One worker per core.
CMD ["granian", "--interface", "wsgi", "config.wsgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--blocking-threads", "16", "--respawn-failed-workers"]
