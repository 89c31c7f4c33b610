# syntax=docker/dockerfile:1
# One image for every service: docker-compose.yml picks the service with `command`
# (node dist/gateway/main.js, dist/processors/main.js, dist/alerting/main.js, dist/alerting/webhooks/main.js, dist/simulator/main.js).
# Node: the current LTS line. The code is compiled by tsc (tsconfig.build.json: .ts imports rewritten to .js),
# so the runtime image carries neither TypeScript nor tsx.
ARG NODE_IMAGE=node:26-bookworm-slim

# Dependencies, once, from the lock file (cached while package*.json do not change).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

# Compile TypeScript to dist/.
FROM deps AS build
COPY . .
RUN npx tsc -p tsconfig.build.json

# Production dependencies only.
FROM deps AS prod-deps
RUN npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The image's `node` user (uid 1000): no service needs root, and none writes inside the image.
USER node
# MQTT (gateway), the ops ports (gateway 9101, processors 9102, simulator 9103, alerting 9104, webhooks 9106), the alert
# API (9105): the config defaults (README "Health and metrics endpoints"; test/ports.test.ts checks this line).
EXPOSE 1883 9101 9102 9103 9104 9105 9106
# Services drain on SIGTERM (core/shutdown.ts); compose gives them `init: true` so signals reach node.
STOPSIGNAL SIGTERM
CMD ["node", "dist/gateway/main.js"]
