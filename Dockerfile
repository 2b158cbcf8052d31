# blip's image: built on Debian bookworm with the repository's own
# scripts/install-deps, run on bookworm-slim as a non-root user with only the
# runtime libraries. The base images are build args, so it builds where no
# registry is reachable (scripts/container builds it with podman that way).
ARG BUILD_IMAGE=debian:bookworm
ARG RUN_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
COPY scripts/install-deps /src/scripts/install-deps
RUN /src/scripts/install-deps --build-only && rm -rf /var/lib/apt/lists/*
COPY . /src
# The build context has no .git: the version comes in as an argument.
ARG BLIP_VERSION=unknown
RUN cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLIP_BUILD_TESTS=OFF -DBLIP_BUILD_BENCH=OFF \
      -DBLIP_VERSION_OVERRIDE="${BLIP_VERSION}" \
 && cmake --build /build --target blip \
 && strip /build/blip \
 && /build/blip --version \
 && cmake --build /build --target package

# The Debian package from the same build (scripts/container package DIR writes it to DIR).
FROM scratch AS package
COPY --from=build /build/blip_*.deb /

FROM ${RUN_IMAGE}
ARG BLIP_VERSION=unknown
ARG BLIP_SOURCE=unknown
LABEL org.opencontainers.image.title="blip" \
      org.opencontainers.image.description="High-frequency synthetic uptime prober: sub-second HTTP, Postgres and Redis probes, outage windows and their time-of-hour pattern, a Statuspage-compatible feed" \
      org.opencontainers.image.version="${BLIP_VERSION}" \
      org.opencontainers.image.source="${BLIP_SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
# ca-certificates for TLS probes, tzdata for time zones; no package lists left behind.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libuv1 libcurl4 libsqlite3-0 libpq5 libhiredis0.14 libspdlog1.10 libfmt9 libtomlplusplus3 libmicrohttpd12 libc-ares2 libdate-tz3 libprotobuf-lite32 libsnappy1v5 libsystemd0 \
      ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && { [ -s /etc/nsswitch.conf ] || printf 'hosts: files dns\n' >/etc/nsswitch.conf; } \
 && groupadd --system --gid 10001 blip \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/blip --no-create-home --shell /usr/sbin/nologin blip \
 && mkdir -p /etc/blip/probes.d /var/lib/blip \
 && chown 10001:10001 /var/lib/blip
COPY --from=build /build/blip /usr/local/bin/blip
COPY deploy/probes.d/ /etc/blip/probes.d/
USER 10001:10001
WORKDIR /var/lib/blip
VOLUME /var/lib/blip
# Two faces. The private one (everything: /metrics, /healthz, /ping, the
# operator's page) is CMD's --listen; it answers only Host names that are
# loopback, IP literals or BLIP_ALLOWED_HOSTS (compose's service name), against
# DNS rebinding. The public one (the page and the Statuspage documents) is for
# a reverse proxy; compose publishes it and names that proxy in BLIP_TRUSTED_PROXY.
ENV BLIP_PUBLIC_LISTEN=0.0.0.0:9186 \
    BLIP_ALLOWED_HOSTS=blip
EXPOSE 9185 9186
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["blip", "health"]
ENTRYPOINT ["blip"]
CMD ["run", "-c", "/etc/blip/probes.d", "--db", "/var/lib/blip/blip.db", "--listen", "0.0.0.0:9185"]
