# Local stand-in for redis:7-alpine, built by build-base-images.sh: Debian bookworm's redis-server 7,
# a `redis` user, and /data as the working directory (owned by redis, as in the official image).
ARG BASE_IMAGE=aicache-base/debian:bookworm
FROM ${BASE_IMAGE}
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
  && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* \
  && mkdir -p /data /usr/local/etc/redis \
  && chown redis:redis /data \
  && redis-server --version
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server"]
