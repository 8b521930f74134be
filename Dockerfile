# syntax=docker/dockerfile:1
# ecs-nic-operator image: wheels are built in a throwaway stage; the final stage has no compiler, no pip
# cache and no write access outside /tmp (run it with readOnlyRootFilesystem: true).

FROM python:3.11-slim AS builder
WORKDIR /src
# Dependencies first: a source change does not rebuild them.
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# Must match pyproject.toml's version (tests/unit/test_dockerfile.py checks it).
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="ecs-nic-operator" \
      org.opencontainers.image.description="Attach NICs to Huawei Cloud ECS / OpenStack servers from Kubernetes resources" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    TMPDIR=/tmp
COPY --from=builder /wheels /wheels
# Install from the wheels only (no index), then drop them and pip: nothing installs anything at run time.
RUN pip install --no-cache-dir --no-index --find-links=/wheels "ecs-nic-operator==${VERSION}" \
    && rm -rf /wheels \
    && pip uninstall --no-cache-dir -y pip
# Numeric UID/GID so that runAsNonRoot can verify it without an /etc/passwd lookup.
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 8081
ENTRYPOINT ["ecs-nic-operator", "run"]
CMD ["--all-namespaces", "--metrics-port=8080", "--health-port=8081"]
