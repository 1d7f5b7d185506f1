# One image for the api, the workers and the migrations; the command picks the process:
#   node dist/server.js   api        node dist/worker.js   workers
#   node dist/migrate.js  migrations node dist/cli/keys-create.js --scopes ops   an API key
# No Docker engine runs where this was written: it is kept correct by reading.

# Node.js 24 LTS, pinned to the exact release CI tests on (.ci/run fetches the same one).
FROM node:24.22.3-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/build-if-stale.mjs scripts/pglite-seed.mjs ./scripts/
COPY src ./src
# esbuild bundles each entry into dist/; the embedded database's seed it also makes is for
# `npm start` on a laptop, not for the image (which runs on DATABASE_URL): dropped.
RUN npm run build && npm prune --omit=dev && rm -rf node_modules/.cache

FROM node:24.22.3-bookworm-slim AS runtime
# --max-semi-space-size=8: V8 otherwise grows its young generation to 64 MB a semi-space under
# load, half the api's RSS; 8 MB served the same requests a second (bench/, docs/performance.md).
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=8 \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node package.json ./
COPY --chown=node:node migrations ./migrations
# The image's own non-root user.
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/server.js"]
