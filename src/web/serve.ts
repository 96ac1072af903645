// Serves the dashboard from the node's own HTTP server: registerDashboard
// adds GET routes under a prefix (default /ui) for the few files of the
// bundle, held in memory. The bundle is built at registration when dist/web
// is missing or older than the sources, so `npm start` needs no extra step.
// Runs in Node, not in the browser.

import type { FastifyInstance, FastifyReply } from 'fastify';
import { ZommaError } from '../lib/errors.ts';
import { ensureBundle } from './build.ts';
import type { Bundle } from './build.ts';

export interface DashboardOptions {
  /** Path prefix; default /ui. */
  prefix?: string;
  /** A prebuilt bundle (tests); default: dist/web, rebuilt when stale. */
  bundle?: Bundle;
}

const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

// The page loads only its own files; the API is on the same origin, the feed a WebSocket to it.
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PREFIX_PATTERN = /^\/[a-z0-9][a-z0-9_-]*(\/[a-z0-9][a-z0-9_-]*)*$/;

export class DashboardError extends ZommaError<'BadDashboardPrefix'> {}

export function registerDashboard(app: FastifyInstance, options: DashboardOptions = {}): void {
  const prefix = options.prefix ?? '/ui';
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new DashboardError(
      'BadDashboardPrefix',
      `dashboard prefix ${JSON.stringify(prefix)} must look like /ui`,
    );
  }
  const bundle = options.bundle ?? ensureBundle();
  // Only the bundle's own names are routes: nothing from the request reaches the file system.
  for (const [name, bytes] of bundle) {
    const type = CONTENT_TYPES[name.split('.').pop() ?? ''] ?? 'application/octet-stream';
    const body = Buffer.from(bytes);
    const send = (reply: FastifyReply) =>
      reply
        .header('content-type', type)
        .header('cache-control', 'no-cache')
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', CONTENT_SECURITY_POLICY)
        .send(body);
    app.get(`${prefix}/${name}`, async (_req, reply) => send(reply));
    if (name === 'index.html') app.get(`${prefix}/`, async (_req, reply) => send(reply));
  }
  // Relative asset URLs in index.html need the trailing slash.
  app.get(prefix, async (_req, reply) => reply.redirect(`${prefix}/`, 302));
}
