#!/bin/bash
# InfluxDB 2 runs this once, on its first start (docker-entrypoint-initdb.d), after DOCKER_INFLUXDB_INIT_*
# created the org, the bucket and the admin token, with the influx CLI already configured for them.
# It maps the bucket to an InfluxQL database of the same name (retention policy autogen): the database the
# Grafana datasource and every dashboard query use. InfluxDB 2.4+ also maps buckets virtually; the explicit
# mapping does not depend on that and shows in `influx v1 dbrp list`.
set -euo pipefail
influx v1 dbrp create \
  --org "${DOCKER_INFLUXDB_INIT_ORG}" \
  --bucket-id "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
  --db "${DOCKER_INFLUXDB_INIT_BUCKET}" \
  --rp autogen \
  --default
