# destination-webhook: Airbyte / Valmi destination connector image.
#
#   docker build -t valmi/destination-webhook:dev .
#   docker build --build-arg BUILD_IMAGE=... --build-arg RUNTIME_IMAGE=... .
#
# The build and runtime bases must share a glibc (both Debian bookworm by default).
ARG BUILD_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /app

# Dependencies first, against stub sources, so this layer is cached until a manifest or the
# lockfile changes. The workspace has two members ("." and "receiver"); the receiver is only a
# dev-dependency of the connector but its manifest and a target must exist for the workspace to load.
COPY Cargo.toml Cargo.lock ./
COPY receiver/Cargo.toml receiver/Cargo.toml
RUN mkdir -p src receiver/src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > receiver/src/main.rs \
    && touch receiver/src/lib.rs \
    && cargo build --release --locked -p destination-webhook \
    && rm -rf src receiver/src

# The real sources. `touch` makes them newer than the stub build's artifacts (COPY keeps the
# build context's mtimes, which can be older), so cargo rebuilds the connector crate.
COPY src src
COPY receiver/src receiver/src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked -p destination-webhook \
    && ./target/release/destination-webhook spec > /dev/null

FROM ${RUNTIME_IMAGE}

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 connector \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin connector

COPY --from=build /app/target/release/destination-webhook /usr/local/bin/destination-webhook

ENV AIRBYTE_ENTRYPOINT="/usr/local/bin/destination-webhook"
ENTRYPOINT ["/usr/local/bin/destination-webhook"]

LABEL io.airbyte.name=valmi/destination-webhook io.airbyte.version=0.1.0

USER 10001:10001
