# One image for every Kirim process: web (the default command), the task worker and the scheduler
# (compose.yaml runs each). The runtime lock alone, a non-root user, static files collected at build.
#   docker build -t kirim .
# Where no registry is reachable, any Debian bookworm base with python3 and python3-venv builds it
# (--build-arg BASE_IMAGE=...; CI builds it so, with buildah).
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/kirim/venv/bin:$PATH

RUN groupadd --gid 10001 kirim \
    && useradd --uid 10001 --gid kirim --create-home --home-dir /home/kirim --shell /usr/sbin/nologin kirim

WORKDIR /opt/kirim/app
# The lock first: code changes rebuild from here down, not the dependencies.
COPY requirements.txt ./
RUN python3 -m venv /opt/kirim/venv && pip install --no-compile -r requirements.txt && python -m compileall -q /opt/kirim/venv

COPY . .
# collectstatic reads settings, which need their secrets: throwaway ones, for this step only.
RUN SECRET_KEY=collectstatic META_APP_SECRET=collectstatic META_WEBHOOK_VERIFY_TOKEN=collectstatic \
    python manage.py collectstatic --noinput \
    && python -m compileall -q . \
    && chown -R root:root . && chmod -R a+rX .

USER kirim:kirim
ENV BIND=0.0.0.0:8000
EXPOSE 8000
# The web process's readiness (the database answers, every migration applied) on whatever port BIND
# names (worker and scheduler: compose.yaml turns it off).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ['BIND'].rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/v1/health/ready', timeout=4)"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "kirim.wsgi"]
