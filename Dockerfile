# Backstop: every binary in one slim, non-root image.
# Build:  docker build -t backstop .
# The CronJobs set the command (migrate, backfill, ...); the default prints help.

FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libpqxx-dev libpq-dev libcpprest-dev libboost-dev libssl-dev \
      libyaml-cpp-dev prometheus-cpp-dev libspdlog-dev libfmt-dev librabbitmq-dev nlohmann-json3-dev \
      libcli11-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY pkg pkg
COPY cmd cmd
COPY migrations migrations
COPY bench bench
COPY tests tests
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBACKSTOP_TESTS=OFF -DBACKSTOP_BENCH=OFF \
 && cmake --build build -j"$(nproc)" \
 && mkdir -p /out/bin \
 && find build/bin -maxdepth 1 -type f -perm -u+x -exec install -m 0755 {} /out/bin/ \; \
 && strip /out/bin/*

FROM debian:bookworm-slim
# Runtime libraries only; postgresql-client provides pg_dump for `migrate --backup-dir`.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libpqxx-6.4 libpq5 libyaml-cpp0.7 libspdlog1.10 libfmt9 libssl3 libcpprest2.10 librabbitmq4 \
      libprometheus-cpp-core1.0 libprometheus-cpp-push1.0 libcpp-httplib0.11 \
      postgresql-client-15 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 backstop \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin backstop
COPY --from=build /out/bin/ /usr/local/bin/
COPY migrations /usr/share/backstop/migrations
USER 10001:10001
ENV BACKSTOP_LOG_FORMAT=json
CMD ["migrate", "--help"]
