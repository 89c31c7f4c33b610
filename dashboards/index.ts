/** Every provisioned dashboard, and the JSON files Grafana loads (dashboards/grafana/dashboards/). */
import { dashboard, type DashboardSpec } from './builder.ts';
import { alerts } from './definitions/alerts.ts';
import { deviceDetail } from './definitions/device-detail.ts';
import { fleetOverview } from './definitions/fleet-overview.ts';
import { pipelineHealth } from './definitions/pipeline-health.ts';

export const DASHBOARDS: Record<string, DashboardSpec> = {
  'fleet-overview.json': fleetOverview,
  'device-detail.json': deviceDetail,
  'alerts.json': alerts,
  'pipeline-health.json': pipelineHealth,
};

/** Folder (relative to the repository root) that the Grafana dashboard provider reads. */
export const DASHBOARD_DIR = 'dashboards/grafana/dashboards';

/** File name -> exact file content (2-space JSON plus a newline), as committed. */
export function renderDashboards(): Map<string, string> {
  return new Map(Object.entries(DASHBOARDS).map(([file, spec]) => [file, `${JSON.stringify(dashboard(spec), null, 2)}\n`]));
}
