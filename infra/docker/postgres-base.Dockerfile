# Local stand-in for pgvector/pgvector:pg15, built by build-base-images.sh (the context holds this
# machine's CA bundle, infra/scripts/install-pgvector.sh and postgres-entrypoint.sh): Debian bookworm's
# PostgreSQL 15 with pgvector built from Debian's source package, as on the host. Same contract as the
# official image for what compose uses: POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB at the first start,
# data in /var/lib/postgresql/data, pg_isready on the PATH, port 5432.
ARG BASE_IMAGE=aicache-base/debian:bookworm
FROM ${BASE_IMAGE}
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY install-pgvector.sh /usr/local/sbin/install-pgvector.sh
# No cluster at install time: the entrypoint makes one in PGDATA. The build tools pgvector needs go
# away in the same layer once it is installed.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
  && echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/00-no-main-cluster.conf \
  && apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 ca-certificates \
  && apt-mark manual postgresql-15 >/dev/null \
  && /usr/local/sbin/install-pgvector.sh 15 \
  && DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq --auto-remove postgresql-server-dev-15 dpkg-dev make gcc >/dev/null \
  && apt-get clean \
  && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/local/sbin/install-pgvector.sh \
  && test -f /usr/share/postgresql/15/extension/vector.control \
  && mkdir -p /var/run/postgresql /var/lib/postgresql/data \
  && chown postgres:postgres /var/run/postgresql /var/lib/postgresql/data \
  && chmod 3777 /var/run/postgresql \
  && chmod 700 /var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
# The official image stops PostgreSQL with SIGINT (a fast shutdown: no waiting for clients to leave).
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
