/**
 * Writes the dashboard JSON that Grafana loads: `npm run dashboards:build`.
 * dashboards/dashboards.test.ts fails when the committed files differ from what this writes.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DASHBOARD_DIR, renderDashboards } from './index.ts';

const root = join(import.meta.dirname, '..');
await mkdir(join(root, DASHBOARD_DIR), { recursive: true });
for (const [file, text] of renderDashboards()) {
  await writeFile(join(root, DASHBOARD_DIR, file), text);
  console.log(`wrote ${DASHBOARD_DIR}/${file}`);
}
