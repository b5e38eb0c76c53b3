# The one image of docker-compose.yml: web (gunicorn), worker and beat (Celery), the one-shot migrate job,
# and the optional MitID Erhverv simulator. Configuration comes only from the environment at run time
# (docs/operations.md); nothing secret is baked in.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH
WORKDIR /app

# Locked runtime dependencies only (no test or lint tools); a layer of its own, so a code change does not
# reinstall them. Compiled to bytecode here, as pip would: otherwise every container compiles what it imports
# each time it starts (uv does not compile by default).
RUN pip install --no-cache-dir uv==0.13.9
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-cache --compile-bytecode

COPY . .

# Static files are collected at build time, with hashed names, into /app/staticfiles (WhiteNoise serves them
# from gunicorn). Settings in production mode refuse to load without secrets, so this one command gets
# throw-away ones; they exist only in this RUN's environment, not in any layer.
RUN TRUSTVIEW_ENV=production TRUSTVIEW_VAR_DIR=/tmp/build-var \
    DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    TRUSTVIEW_KEY_ENCRYPTION_KEYS="$(python -m certificates.vault)" \
    python manage.py collectstatic --noinput --verbosity 0 \
    && rm -rf /tmp/build-var

# Run as an unprivileged user. It may write only /app/var (beat's schedule) and /simulator (the
# simulator's state volume; named volumes take this ownership when first created).
RUN useradd --system --uid 10001 --no-create-home --home-dir /app trustview \
    && mkdir -p /app/var /simulator \
    && chown trustview /app/var /simulator
USER trustview

ENV TRUSTVIEW_ENV=production
EXPOSE 8000
CMD ["gunicorn", "trustview.wsgi", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
