# The minimoto image: one binary (serve / worker / setup / cleanup) plus ffmpeg.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin minimoto

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/minimoto /usr/local/bin/minimoto
WORKDIR /var/lib/minimoto
ENTRYPOINT ["minimoto"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
