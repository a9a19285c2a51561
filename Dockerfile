# One image with every binary of the workspace; docker-compose.yml picks the
# command per service.
#
# The dependencies (RocksDB's C++, librdkafka and the crates) are built in a
# layer of their own, from cargo-chef's recipe: the manifests and Cargo.lock,
# not the code. A change to the project's code reuses that layer and rebuilds
# only the project's crates; a change to a dependency rebuilds it.

FROM rust:1-bookworm AS chef
# librocksdb-sys needs libclang; librdkafka builds with cmake, and links
# OpenSSL for TLS and SASL/SCRAM.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libclang-dev clang cmake libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# The recipe: what the dependency layer depends on.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --workspace --bins --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --workspace --bins \
 && mkdir /out \
 && cp target/release/projector target/release/order-service target/release/notifier \
       target/release/fulfilment target/release/web-console target/release/loadgen \
       target/release/sinks /out/

FROM debian:bookworm-slim
# curl for the healthchecks; OpenSSL for librdkafka's TLS; the CA
# certificates for brokers signed by a public CA.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libssl3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
# The projector's state stores live here; the services run unprivileged.
RUN mkdir -p /var/lib/orders && chown nobody:nogroup /var/lib/orders
WORKDIR /var/lib/orders
USER nobody
