# Builds both binaries; the compose file runs the same image as API and as workers.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins -p pacer-api -p pacer-worker

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/pacer-api /src/target/release/pacer-worker /usr/local/bin/
USER nobody
CMD ["pacer-api"]
