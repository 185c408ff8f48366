# One image recipe for the three services. Build context: the repo root.
#   docker build --build-arg SERVICE=retrieval-proxy --build-arg PORT=8002 -t aicache/retrieval-proxy .
# SERVICE is a directory under services/. NODE_IMAGE replaces the base image where no registry is
# reachable (infra/docker/build-base-images.sh builds a stand-in). Written for the classic builder
# and BuildKit alike.
ARG NODE_IMAGE=node:20-bookworm-slim

# The services and the workspace packages they use, nothing else (turbo prune --docker): json/ holds
# their manifests and a pruned lockfile, full/ their sources. The services are found under services/,
# so a new service or package needs no edit here. This stage reruns on any change to the context, but
# its output changes only with what the images are built from, which keeps the layers below cached.
FROM ${NODE_IMAGE} AS prune
WORKDIR /src
ENV TURBO_TELEMETRY_DISABLED=1
COPY package.json ./
RUN npm install -g --no-fund --no-audit "turbo@$(node -p 'require("./package.json").devDependencies.turbo')"
COPY . .
RUN turbo prune $(for dir in services/*/; do node -p "require('./${dir}package.json').name"; done) --docker --out-dir /pruned \
  && if [ -f .npmrc ]; then cp .npmrc /pruned/json/; fi

FROM ${NODE_IMAGE} AS build
WORKDIR /repo
ENV CI=true PNPM_HOME=/pnpm PATH=/pnpm:$PATH
COPY --from=prune /pruned/json/ ./
# pnpm as pinned by package.json "packageManager", through npm: older corepack releases cannot verify
# the signatures of newer pnpm releases.
RUN npm install -g --no-fund --no-audit "$(node -p 'require("./package.json").packageManager')" \
  && pnpm install --frozen-lockfile
COPY --from=prune /pruned/full/ ./
# Every service and what it depends on, built and deployed once: the three images share these layers
# (SERVICE is read only below), so building all three costs about what building one does.
RUN pnpm --filter "{./services/*}..." run build \
  && for dir in services/*/; do \
    name=$(basename "$dir") \
    && pnpm --filter "./$dir" deploy --prod --legacy "/deploy/$name" \
    && rm -rf "/deploy/$name/src" "/deploy/$name/test" "/deploy/$name/"tsconfig*.json "/deploy/$name/vitest.config.ts" || exit 1; \
  done

FROM ${NODE_IMAGE} AS runtime
ARG SERVICE
ARG PORT
RUN test -n "${SERVICE}" -a -n "${PORT}" || { echo "build with --build-arg SERVICE=<a directory under services/> --build-arg PORT=<its port>" >&2; exit 1; }
ENV NODE_ENV=production HOST=0.0.0.0 PORT=${PORT} SERVICE_NAME=${SERVICE}
WORKDIR /app
# Owned by root: the service cannot change its own code, and a read-only root file system changes nothing.
COPY --from=build /deploy/${SERVICE} ./
USER node
EXPOSE ${PORT}
HEALTHCHECK --interval=10s --timeout=10s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/health`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node gets SIGTERM (compose adds an init as PID 1 that forwards it) and drains in-flight
# requests before it exits (runServer in @aicache/service-kit).
CMD ["node", "dist/server.js"]
