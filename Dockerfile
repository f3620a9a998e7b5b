# voicebridge container: gunicorn inside `python -m voicebridge serve`, listening on $PORT on all interfaces.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app

# Dependencies first, from the pinned lock, so code changes reuse this layer.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --no-deps . \
    && groupadd --system --gid 10001 voicebridge \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin voicebridge

USER 10001:10001

# The tag this image is pushed under (scripts/rollout.sh passes it): /healthz reports it, so a rollout's
# gate can tell the new container from an old one that is still healthy. Late, so a new tag reuses the layers above.
ARG VOICEBRIDGE_IMAGE_TAG=""
ENV VOICEBRIDGE_HOST=0.0.0.0 \
    PORT=8000 \
    VOICEBRIDGE_IMAGE_TAG=${VOICEBRIDGE_IMAGE_TAG}
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', timeout=4)"]

# Exec form: python is PID 1 and receives App Service's SIGTERM itself, so it drains before exiting.
CMD ["python", "-m", "voicebridge", "serve"]
