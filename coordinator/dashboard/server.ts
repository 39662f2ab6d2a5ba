import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TrialStatus } from '../../proto/gen/caviar/v1/TrialStatus';
import type { Member } from '../../proto/gen/caviar/v1/Member';
import type { HttpRoutes } from '../../core/metrics-server';
import { trialView } from './trial-view';

/** What the dashboard reads from the coordinator, at each request. */
export interface DashboardSource {
  trialStatuses(): TrialStatus[];
  clusterMembers(): Member[];
}

/**
 * The page's files live in coordinator/dashboard/page/ of the repository: tsc copies no
 * non-TS files, so they are found from the repository root whether this runs from source
 * (tsx) or from dist/.
 */
function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${__dirname}`);
    dir = up;
  }
  return dir;
}

const PAGE_DIR = path.join(repoRoot(), 'coordinator', 'dashboard', 'page');

/** Chart.js's self-contained browser build, served from node_modules (its exports map hides dist/). */
const CHART_JS = path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js');

/** Fixed URL → file map: nothing from the request becomes a path. */
const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: path.join(PAGE_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: path.join(PAGE_DIR, 'dashboard.js'), type: 'text/javascript' },
  '/dashboard.css': { file: path.join(PAGE_DIR, 'dashboard.css'), type: 'text/css' },
  '/vendor/chart.umd.min.js': { file: CHART_JS, type: 'text/javascript' },
};

function sendJson(res: ServerResponse, body: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/**
 * The coordinator's web dashboard, as routes for its metrics HTTP server: the page at /, and the
 * JSON it polls, /api/trials ({trials: TrialView[]}) and /api/members ({members: Member[]}).
 */
export function dashboardRoutes(source: DashboardSource): HttpRoutes {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    if (url.pathname === '/api/trials') {
      sendJson(res, { trials: source.trialStatuses().map(trialView) });
      return true;
    }
    if (url.pathname === '/api/members') {
      sendJson(res, { members: source.clusterMembers() });
      return true;
    }
    const entry = STATIC[url.pathname];
    if (!entry) return false;
    const body = await fs.readFile(entry.file);
    res.writeHead(200, { 'content-type': entry.type, 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}
