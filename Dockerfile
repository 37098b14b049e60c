# The minimoto image: the four binaries built with the AWS backend (`minimoto` for setup,
# cleanup and the all-in-one serve; `minimoto-api`; `minimoto-worker`; `minimoto-scaler`, whose
# local fleet runs workers in its own container) plus ffmpeg and libheif's heif-convert (HEIC
# photos). They link
# the system SQLite: libsqlite3-dev to build, libsqlite3-0 to run.
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libsqlite3-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
      -p minimoto -p minimoto-api -p minimoto-worker -p minimoto-scaler \
      --features minimoto/aws,minimoto-api/aws,minimoto-worker/aws,minimoto-scaler/aws

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg libheif-examples libsqlite3-0 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/minimoto --create-home minimoto
COPY --from=build /src/target/release/minimoto /src/target/release/minimoto-api \
     /src/target/release/minimoto-worker /src/target/release/minimoto-scaler /usr/local/bin/
USER minimoto
WORKDIR /var/lib/minimoto
ENV MINIMOTO_DATA_DIR=/var/lib/minimoto/data
EXPOSE 8080
# The API's liveness route; worker containers (no HTTP) turn it off in compose.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz >/dev/null || exit 1
ENTRYPOINT ["minimoto"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
