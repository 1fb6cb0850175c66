# syntax=docker/dockerfile:1
# vaewatch: CPU image by default; `--build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124`
# with `--build-arg BASE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04` for a CUDA image
# (the worker picks the GPU with VAEWATCH_DEVICE=auto).
ARG PYTHON_IMAGE=python:3.11-slim
ARG BASE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first, from the CPU (or CUDA) index: an unpinned torch would pull a multi-GB CUDA build
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY vaewatch ./vaewatch
COPY vaecore ./vaecore
COPY schemas ./schemas
COPY training ./training
COPY worker ./worker
RUN pip install .

FROM ${BASE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    VAEWATCH_REGISTRY=/models \
    VAEWATCH_METRICS_PORT=9400
RUN groupadd --system --gid 10001 vaewatch \
 && useradd --system --uid 10001 --gid vaewatch --home-dir /home/vaewatch --create-home vaewatch \
 && mkdir -p /models && chown vaewatch:vaewatch /models
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
WORKDIR /home/vaewatch
EXPOSE 9400
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os,urllib.request,sys; p=os.environ.get('VAEWATCH_METRICS_PORT','9400'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{p}/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["vaewatch"]
CMD ["worker"]
