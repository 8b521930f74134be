# syntax=docker/dockerfile:1
# ecs-nic-operator image: wheels are built in a throwaway stage from the locked, hash-checked dependency set;
# the final stage has no compiler, no pip cache and no write access outside /tmp (readOnlyRootFilesystem).
#
# Base image: python:3.11-slim-bookworm pinned by the digest of its multi-arch index (linux/amd64 + arm64), so
# a rebuild gets the same bytes. The digest was taken from public Dockerfiles that pin this tag (two unrelated
# projects pin this same value); it was NOT pulled or verified where this file was written (no registry access).
# The release workflow checks it before building (a multi-arch index with both platforms, else it fails).
# To bump it: docker buildx imagetools inspect python:3.11-slim-bookworm --format '{{json .Manifest.Digest}}'
# and replace the digest in BOTH FROM lines (tests/unit/test_dockerfile.py checks they agree).

FROM python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b AS builder
WORKDIR /src
# Dependencies first, from the locks only: a change to the source (operator/) does not rebuild them.
COPY requirements.lock requirements-build.lock ./
RUN pip wheel --no-cache-dir --require-hashes --no-deps --wheel-dir /wheels -r requirements.lock \
    && pip install --no-cache-dir --require-hashes --no-deps -r requirements-build.lock
COPY pyproject.toml README.md ./
COPY operator ./operator
# The operator's own wheel, with the locked build backend (no build isolation: nothing is fetched unhashed).
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

FROM python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b
# Must match pyproject.toml's version (tests/unit/test_dockerfile.py checks it); the release workflow passes
# VERSION, REVISION (the git commit) and SOURCE (the repository URL).
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/ecs-nic-operator/ecs-nic-operator
LABEL org.opencontainers.image.title="ecs-nic-operator" \
      org.opencontainers.image.description="Attach NICs to Huawei Cloud ECS / OpenStack servers from Kubernetes resources" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-bookworm"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    TMPDIR=/tmp
COPY --from=builder /wheels /wheels
# Exactly the locked set (no index, no dependency resolution), then drop the wheels and pip: nothing installs
# anything at run time. pip check proves the set is complete and consistent.
RUN pip install --no-cache-dir --no-index --no-deps /wheels/*.whl \
    && pip check \
    && python -c "import importlib.metadata as m, sys; sys.exit(m.version('ecs-nic-operator') != '${VERSION}')" \
    && rm -rf /wheels \
    && pip uninstall --no-cache-dir -y pip
# Numeric UID/GID so that runAsNonRoot can verify it without an /etc/passwd lookup.
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 8081
ENTRYPOINT ["ecs-nic-operator", "run"]
CMD ["--all-namespaces", "--metrics-port=8080", "--health-port=8081"]
