# proctor container image: one binary for every role (serve --role all|gateway|worker,
# migrate, admin …), the ONNX Runtime library and the face models.
#
#   docker build -t proctor .
#   # models: a checkout where models/setup.sh already ran (models/bin, models/lib) is reused;
#   # otherwise pass the mirror of the converted models (see models/README.md):
#   docker build --build-arg PROCTOR_MODELS_MIRROR=https://mirror.example/proctor-models -t proctor .

# ---- build: the release binary -------------------------------------------------------
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc g++ make cmake pkg-config perl \
 && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock rust-toolchain.toml ./
COPY server server
COPY tests tests
RUN cargo build --release --locked -p proctor-server --bin proctor \
 && strip target/release/proctor

# ---- models: face models and the ONNX Runtime library, sha256-checked ---------------------
FROM python:3.11-slim-bookworm AS models
ARG PROCTOR_MODELS_MIRROR=""
ENV PROCTOR_MODELS_MIRROR=${PROCTOR_MODELS_MIRROR}
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY models models
RUN models/setup.sh \
 && cp -L models/lib/libonnxruntime.so models/lib/libonnxruntime.so.real \
 && mv models/lib/libonnxruntime.so.real models/lib/libonnxruntime.so

# ---- runtime: slim, non-root, read-only friendly ---------------------------------------
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 proctor \
 && useradd --system --uid 10001 --gid proctor --home-dir /data --shell /usr/sbin/nologin proctor \
 && mkdir -p /data && chown proctor:proctor /data
COPY --from=build /src/target/release/proctor /usr/local/bin/proctor
COPY --from=models /src/models/bin /opt/proctor/models/bin
COPY --from=models /src/models/lib/libonnxruntime.so /opt/proctor/models/lib/libonnxruntime.so
ENV PROCTOR_DATA_DIR=/data \
    PROCTOR_LISTEN=0.0.0.0:8080 \
    PROCTOR_MODELS_DIR=/opt/proctor/models/bin \
    PROCTOR_ONNXRUNTIME=/opt/proctor/models/lib/libonnxruntime.so
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# Liveness without curl: a plain HTTP/1.0 GET /healthz over bash's /dev/tcp.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ' 200 ' <&3"]
ENTRYPOINT ["/usr/local/bin/proctor"]
CMD ["serve"]
