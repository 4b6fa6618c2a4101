# One image with the four services and orderctl; docker-compose.yml picks the binary per service.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --release --bins

FROM debian:bookworm-slim
# libssl3: librdkafka links the system OpenSSL (Kafka TLS and SCRAM).
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/order-service /src/target/release/inventory-service \
     /src/target/release/fulfillment-service /src/target/release/shipping-service /src/target/release/orderctl /usr/local/bin/
# The development payment gateway's ledger (a named volume in docker-compose.yml).
RUN mkdir -p /var/lib/gateway && chown nobody /var/lib/gateway
USER nobody
