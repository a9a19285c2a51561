# One image with every binary of the workspace; docker-compose.yml picks the
# command per service.

FROM rust:1-bookworm AS build
# librocksdb-sys needs libclang; librdkafka builds with cmake.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libclang-dev clang cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --workspace --bins \
 && mkdir /out \
 && cp target/release/projector target/release/order-service target/release/notifier \
       target/release/loadgen target/release/sinks /out/

FROM debian:bookworm-slim
# curl for the healthchecks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
# The projector's state stores live here; the services run unprivileged.
RUN mkdir -p /var/lib/orders && chown nobody:nogroup /var/lib/orders
WORKDIR /var/lib/orders
USER nobody
