# Backstop: every binary in one slim, non-root image.
# Build:  scripts/image.sh  (or ./dev image), which passes the version, the commit
# and, offline, a local Debian base made with mmdebstrap; by hand:
#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" -t backstop .
# The CronJobs set the command (migrate, backfill, ...); the default prints help.

# Both stages start from one pinned Debian 12 base. The dated tag is Debian's own
# (bookworm-YYYYMMDD-slim, rebuilt from snapshot.debian.org of that day); pin it by
# digest too where the registry is reachable (see README "Container image").
ARG BASE_IMAGE=docker.io/library/debian:bookworm-20250520-slim

FROM ${BASE_IMAGE} AS build
# What CMake's find_package/pkg_check_modules resolve to (tests/image/check.py
# checks this list against a real build tree): the same as scripts/lib.sh's build
# packages, without the test, benchmark and tool packages.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libpqxx-dev libpq-dev libcpprest-dev libboost-dev libssl-dev libyaml-cpp-dev prometheus-cpp-dev \
      libspdlog-dev libfmt-dev librabbitmq-dev nlohmann-json3-dev libcli11-dev libcpp-httplib-dev \
      libwebsocketpp-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY pkg pkg
COPY cmd cmd
COPY migrations migrations
# .git is not in the context (.dockerignore): the commit comes as a build argument
# and goes into --version and backstop_build_info (empty: the version alone).
ARG REVISION=""
ARG DESCRIBE=""
# Parallel compile jobs (empty: every core).
ARG BUILD_JOBS=""
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBACKSTOP_TESTS=OFF -DBACKSTOP_BENCH=OFF \
      -DBACKSTOP_BUILD_COMMIT="${REVISION}" -DBACKSTOP_BUILD_DESCRIBE="${DESCRIBE}" \
 && cmake --build build -j"${BUILD_JOBS:-$(nproc)}" \
 && mkdir -p /out/bin \
 && find build/bin -maxdepth 1 -type f -perm -u+x -exec install -m 0755 {} /out/bin/ \; \
 && strip /out/bin/*

FROM ${BASE_IMAGE}
# Runtime libraries only (tests/image/check.py maps every library the binaries link
# to its package and checks it is here or in the base); postgresql-client provides
# pg_dump for `migrate --backup-dir`.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libpqxx-6.4 libpq5 libyaml-cpp0.7 libspdlog1.10 libfmt9 libssl3 libcpprest2.10 librabbitmq4 \
      libprometheus-cpp-core1.0 libcpp-httplib0.11 \
      postgresql-client-15 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 backstop \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin backstop
COPY --from=build /out/bin/ /usr/local/bin/
COPY migrations /usr/share/backstop/migrations
ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=""
ARG SOURCE=""
ARG CREATED=""
# The project has no LICENSE file yet: NOASSERTION (SPDX) until it declares one.
ARG LICENSES=NOASSERTION
LABEL org.opencontainers.image.title="backstop" \
      org.opencontainers.image.description="Backstop: exactly-once stop-loss/take-profit exits (every binary; the command picks one)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="${LICENSES}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
USER 10001:10001
ENV BACKSTOP_LOG_FORMAT=json
CMD ["migrate", "--help"]
