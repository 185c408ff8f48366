# Local stand-in for node:20-bookworm-slim, built by build-base-images.sh (the context holds this
# machine's node binary, its npm and its CA bundle). Same layout as the official image: node and npm
# under /usr/local, a `node` user and group with id 1000.
ARG BASE_IMAGE=aicache-base/debian:bookworm
FROM ${BASE_IMAGE}
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
  && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
  && groupadd --gid 1000 node \
  && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
  && node --version && npm --version
# Node reads no system store by itself: without this, npm behind a TLS-inspecting proxy fails with
# "self-signed certificate in certificate chain".
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt NODE_VERSION=20
CMD ["node"]
