FROM python:3.11-slim
# The image runs the production settings unless told otherwise: they refuse to start without
# the secrets and the sender's identity (config/settings/production.py), never falling back
# to a laptop's DEBUG and demo values.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=config.settings.production
WORKDIR /app
# Runtime dependencies only: requirements-dev.lock adds the test and lint tools.
COPY requirements.lock .
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
# The translations' .mo files are build output, not in git (.dockerignore keeps a checkout's out).
RUN python scripts/compile_messages.py
# Collected with the production settings, so the manifest is of exactly the apps production
# installs. They demand their variables; collectstatic reads none of them, so this one command
# gets placeholders, which stay out of the image's environment (a RUN's variables, not ENV).
RUN SECRET_KEY=collectstatic-only RALLY_SENDERS='[]' RALLY_ORGANISATION_NAME=- \
    RALLY_ORGANISATION_ADDRESS=- ANYMAIL_WEBHOOK_SECRET=- RALLY_SUPPRESSION_HASH_KEY=- \
    python manage.py collectstatic --noinput
# Not root: the code and the collected files stay read-only to the processes. var/ holds what
# they write (uploads waiting for the worker in var/media, a shared volume in
# docker-compose.yml, which takes this ownership when it is created).
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent rally \
    && mkdir -p var/media && chown rally:rally var var/media
USER rally
EXPOSE 8000
# granian: HTTP handled in Rust, and 16 threads per worker, so that concurrent signatures share
# a transaction (config/lib/group_commit.py). One worker per core.
CMD ["granian", "--interface", "wsgi", "config.wsgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--blocking-threads", "16", "--respawn-failed-workers"]
