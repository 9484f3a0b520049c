# syntax=docker/dockerfile:1
# channelshift-api: built from the workspace, run as a non-root user on
# Debian slim (the binary needs only libc, libgcc and zlib, all in the base).
# Build context: the repository root (docker-compose.yml sets it), e.g.
#   docker build -f deploy/docker/api.Dockerfile -t channelshift-api .

# Any stable toolchain at or above the workspace rust-version (1.89).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY crates crates
COPY tests tests
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p channelshift-api --bin channelshift-api \
    && cp target/release/channelshift-api /usr/local/bin/channelshift-api

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin channelshift
COPY --from=build /usr/local/bin/channelshift-api /usr/local/bin/channelshift-api
USER 10001
ENV CHANNELSHIFT_LISTEN=0.0.0.0:8080 \
    CHANNELSHIFT_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/channelshift-api"]
