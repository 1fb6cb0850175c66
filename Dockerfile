# syntax=docker/dockerfile:1
# vaewatch: linux/amd64 image, CPU torch by default. Every dependency comes from a lock file
# (exact versions, sha256 of every file; `make lock` regenerates both) installed with
# --require-hashes, so a rebuild installs byte-for-byte what was locked, or fails.
#
#   docker build -t vaewatch:0.1.0 .                                         # CPU
#   docker build -t vaewatch:0.1.0-cuda --build-arg LOCK=requirements-cuda.lock .   # CUDA
#
# The CUDA image is the same Python base with the CUDA build of torch: its wheels bring the
# CUDA runtime libraries (nvidia-* packages), and the host's driver is mounted by the NVIDIA
# container toolkit (`docker run --gpus all`, or the Kubernetes device plugin). No
# nvidia/cuda base is needed, and builder and runtime are one base, so the venv's
# interpreter (/usr/local/bin/python3.11) exists where it runs. VAEWATCH_DEVICE=auto picks
# the GPU.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
# requirements.lock (CPU torch from the PyTorch CPU index) or requirements-cuda.lock (PyPI)
ARG LOCK=requirements.lock
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements.lock requirements-cuda.lock ./
# --no-deps: the lock is the whole closure; a package missing from it fails the build
RUN pip install --require-hashes --no-deps --extra-index-url "${TORCH_INDEX}" -r "${LOCK}"
COPY pyproject.toml README.md ./
COPY vwbase ./vwbase
COPY schemas ./schemas
COPY vaecore ./vaecore
COPY modelstore ./modelstore
COPY kafkaio ./kafkaio
COPY training ./training
COPY worker ./worker
COPY vaewatch ./vaewatch
# the project itself, built with the locked setuptools: nothing more is downloaded
RUN pip install --no-deps --no-build-isolation --no-index . \
 && pip check

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    VAEWATCH_REGISTRY=/models \
    VAEWATCH_METRICS_PORT=9400 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
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
