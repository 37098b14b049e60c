# The minimoto image: the three binaries built with the AWS backend (`minimoto` for setup,
# cleanup and the all-in-one serve; `minimoto-api`; `minimoto-worker`) plus ffmpeg.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
      -p minimoto -p minimoto-api -p minimoto-worker \
      --features minimoto/aws,minimoto-api/aws,minimoto-worker/aws

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/minimoto --create-home minimoto
COPY --from=build /src/target/release/minimoto /src/target/release/minimoto-api \
     /src/target/release/minimoto-worker /usr/local/bin/
USER minimoto
WORKDIR /var/lib/minimoto
ENV MINIMOTO_DATA_DIR=/var/lib/minimoto/data
EXPOSE 8080
# The API's liveness route; worker containers (no HTTP) turn it off in compose.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz >/dev/null || exit 1
ENTRYPOINT ["minimoto"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
