# turbobot in a container: the bot with its embedded GPU engine, or (command `worker`) a GPU
# worker of a bot that has REDIS_URL. Build: `docker build -t turbobot .`; see README, "Container".
# The CUDA runtime base brings the NVIDIA container conventions; torch's wheel brings its own
# CUDA libraries, so the host needs only the driver and the NVIDIA Container Toolkit.
FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04

ARG DEBIAN_FRONTEND=noninteractive
# python3-venv: scripts/install makes a venv here exactly as on a bare machine. curl: HEALTHCHECK.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

# The bot never runs as root (uid/gid 10001; numeric in USER so any host resolves it).
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin turbobot

# Only what the package needs (see .dockerignore), then the same install steps as on a bare
# machine: scripts/install, into /opt/turbobot/venv, as a regular (not editable) install.
WORKDIR /opt/turbobot/src
COPY pyproject.toml README.md ./
COPY scripts/install scripts/install
COPY bot bot
COPY engine engine
COPY adapters adapters
COPY migrations migrations
RUN TURBOBOT_VENV=/opt/turbobot/venv TURBOBOT_EDITABLE=0 scripts/install \
    && rm -rf /root/.cache/pip

# Volumes: the Hugging Face cache (the model, ~58 GB), the database and images, the LoRAs
# (the Turbo LoRA in /loras/turbo/, one folder per style).
ENV PATH=/opt/turbobot/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/models \
    TURBOBOT_DATA_DIR=/data \
    TURBOBOT_LORA_DIR=/loras \
    TURBOBOT_METRICS_HOST=0.0.0.0 \
    TURBOBOT_METRICS_PORT=9464 \
    PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
RUN mkdir -p /models /data /loras && chown 10001:10001 /models /data /loras
VOLUME ["/models", "/data", "/loras"]

USER 10001:10001
WORKDIR /data
EXPOSE 9464
# The model takes minutes to load: failures during the first 15 minutes do not count.
# /healthz is 503 while loading, when the engine stops, or when Discord/Telegram is disconnected.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15m --retries=3 \
    CMD ["/bin/sh", "-c", "curl -fsS http://127.0.0.1:9464/healthz || exit 1"]
ENTRYPOINT ["turbobot"]
CMD ["run"]
