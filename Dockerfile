# syntax=docker/dockerfile:1
# The `sluice` binary in a minimal non-root image. Every role (all, agent, processor, indexer)
# runs from this one image; the Kubernetes manifests in deploy/ pick the role in sluice.toml.
#
#   docker build -t sluice:0.1.0 .
#   docker run --rm sluice:0.1.0 --help

# Builder: the latest stable Rust on Debian 12 (the workspace needs >= 1.88, edition 2024).
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# The cache mounts keep the crate registry and incremental build output between builds; the
# binary is copied out of the cached target dir in the same step, because the mount is not
# part of the image. --locked: build exactly the dependency versions in Cargo.lock.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin sluice \
    && install -D -m 0755 target/release/sluice /out/sluice
# The runtime image has glibc, libgcc_s, libstdc++, libgomp and OpenSSL 3 and nothing else
# (no zlib, zstd, sasl...). Fail here, naming the library, rather than at start-up in a cluster:
# a C dependency that links a system library dynamically must be built static instead.
RUN missing=$(ldd /out/sluice | awk '/=>/ {print $1}' \
        | grep -vE '^(libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|libanl|libnss_[a-z]+|libgcc_s|libstdc\+\+|libgomp|libssl|libcrypto)\.so' \
        || true); \
    if [ -n "$missing" ]; then \
        echo "sluice links shared libraries the runtime image lacks:" $missing >&2; exit 1; \
    fi

# Runtime: glibc and libgcc only (TLS is rustls, so no OpenSSL), no shell, no package manager.
# The `nonroot` user is uid/gid 65532. The node agent overrides the user to read root-owned pod
# log files; see deploy/base/agent.yaml for why and how it stays unprivileged.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/sluice /usr/local/bin/sluice
USER 65532:65532
# The HTTP API: /health, /metrics, /api/search, /api/aggregate.
EXPOSE 7280
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["run", "--config", "/etc/sluice/sluice.toml"]
