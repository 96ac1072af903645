// What every view shares: the socket, the instrument list, and a scope that
// undoes a view's subscriptions and timers when the route changes.

import type { InstrumentView, StatusView } from '../api/view.ts';
import { getJson } from './feed.ts';
import type { RawChannelEvent, LiveSocket } from './feed.ts';
import { win } from './dom.ts';
import type { El } from './dom.ts';

export class Scope {
  private readonly disposers: (() => void)[] = [];
  private disposed = false;

  get alive(): boolean {
    return !this.disposed;
  }

  onDispose(fn: () => void): void {
    this.disposers.push(fn);
  }

  /** Runs fn now and every intervalMs while the view is shown. */
  every(intervalMs: number, fn: () => void): void {
    fn();
    const id = win().setInterval(fn, intervalMs);
    this.onDispose(() => win().clearInterval(id));
  }

  dispose(): void {
    this.disposed = true;
    for (const fn of this.disposers.splice(0).reverse()) fn();
  }
}

export interface App {
  readonly socket: LiveSocket;
  /** The last /v1/status answer (refreshed by the header). */
  status: StatusView | undefined;
  instruments: InstrumentView[];
  instrument(name: string): InstrumentView | undefined;
  /** Loads the instrument list once (kept up to date by the header's poll). */
  loadInstruments(): Promise<InstrumentView[]>;
  /** Reports an error in the status bar (and keeps the view running). */
  report(error: unknown): void;
}

export type View = (root: El, app: App, scope: Scope, args: string[]) => void;

/**
 * Subscribes for as long as the scope lives. The handler gets the channel's
 * data (snapshots and updates): a settled market's channel ends with no data
 * of that kind, and the instrument list the header re-reads drops the market.
 */
export function follow(
  app: App,
  scope: Scope,
  channel: string,
  handler: (event: RawChannelEvent) => void,
): void {
  const stop = app.socket.subscribe(channel, (event) => {
    if (scope.alive && event.type !== 'ended') handler(event);
  });
  scope.onDispose(stop);
}

/** Fetches for a live scope; errors go to the status bar. */
export async function load<T>(app: App, scope: Scope, path: string): Promise<T | undefined> {
  try {
    const value = await getJson<T>(path);
    return scope.alive ? value : undefined;
  } catch (e) {
    if (scope.alive) app.report(e);
    return undefined;
  }
}

export function byName(instruments: InstrumentView[]): Map<string, InstrumentView> {
  return new Map(instruments.map((i) => [i.instrument, i]));
}
