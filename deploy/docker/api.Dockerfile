# syntax=docker/dockerfile:1
# channelshift-api, with channelshift-packs beside it (the API runs it to
# render each pack it is asked for): built from the workspace, run as a
# non-root user on Debian slim (the binaries need only libc, libgcc and zlib,
# all in the base). PDF packs also need Chromium, which this image leaves out:
# without it a PDF pack answers 503.
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
        -p channelshift-packs --bin channelshift-packs \
    && cp target/release/channelshift-api target/release/channelshift-packs /usr/local/bin/

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin channelshift
COPY --from=build /usr/local/bin/channelshift-api /usr/local/bin/channelshift-packs /usr/local/bin/
USER 10001
ENV CHANNELSHIFT_LISTEN=0.0.0.0:8080 \
    CHANNELSHIFT_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/channelshift-api"]
