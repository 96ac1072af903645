// Subscriptions over one WebSocket, independent of which WebSocket: the SDK's
// ZommaSocket (the ws package) and the dashboard's LiveSocket (the browser's)
// both keep their channels here. On a (re)connect every channel is asked for
// again from the last seq it delivered (the server replays what was missed or
// sends a fresh snapshot); anything at or below that seq is dropped (no
// duplicates); a book update that does not apply on the book held (its
// prevSeq is not the last seq) asks for the channel again (no silent gaps). Book channels keep the local book, so a consumer can read it
// whole after each event. A market that settles ends its channels: the
// `ended` message (or, asked for after it, the MarketEnded refusal) is handed
// to the channel's consumer as its last event, and the channel is forgotten,
// never asked for again. No Node or browser API is used here.
//
// Each channel's events are typed by its kind (ChannelEvent<'account'>, …),
// from the schemas the server's messages follow (routes.ts, channelSchemas):
// a consumer reads `event.data` without a cast once it has told a snapshot
// from an update by `event.type`.

import type { ChannelData, ChannelKind, MarketChannelKind } from '../routes.ts';
import type { BookDelta, BookView, LevelView, MarketEndView } from '../view.ts';
import type { WsMessage } from '../ws.ts';

/** The server's message refusing a subscribe for a channel the connection holds (src/api/ws.ts). */
export const ALREADY_SUBSCRIBED = 'already subscribed';
/** The server's message refusing an unsubscribe for a channel the connection does not hold. */
export const NOT_SUBSCRIBED = 'not subscribed to that channel';

/** An event of any channel, as the channels hand it on: its `data` is the channel's (below). */
export interface RawChannelEvent {
  /**
   * ended: the channel's market settled or was retired (`data` is its
   * MarketEndView): the channel's last event, it is no longer followed.
   */
  type: 'snapshot' | 'update' | 'ended';
  channel: string;
  seq: number;
  data: unknown;
  /** Book channels: the whole local book after this event. */
  book?: LocalBook;
}

/** Book channels carry the local book with each snapshot and update; others carry none. */
type BookOf<K extends ChannelKind> = K extends 'book'
  ? { /** The whole local book after this event. */ book: LocalBook }
  : { book?: undefined };

/** A snapshot or an update of channel kind K, with its data typed. */
type ChannelDataEvent<K extends ChannelKind, T extends 'snapshot' | 'update'> = {
  type: T;
  channel: string;
  seq: number;
  data: ChannelData<K, T>;
} & BookOf<K>;

/** The first event of a subscription (and of each re-ask that could not replay): the state. */
export type ChannelSnapshot<K extends ChannelKind> = ChannelDataEvent<K, 'snapshot'>;

/** What one block changed. */
export type ChannelUpdate<K extends ChannelKind> = ChannelDataEvent<K, 'update'>;

/** A market channel's last event: its market settled or was retired. */
export interface ChannelEnded {
  type: 'ended';
  channel: string;
  /** The height of the block that ended the market. */
  seq: number;
  data: MarketEndView;
  book?: undefined;
}

/**
 * An event of a channel of kind K (every kind: an event of any channel).
 * `type` tells which `data` it carries.
 */
export type ChannelEvent<K extends ChannelKind = ChannelKind> = K extends ChannelKind
  ? ChannelSnapshot<K> | ChannelUpdate<K> | (K extends MarketChannelKind ? ChannelEnded : never)
  : never;

/**
 * A book kept from a snapshot and its deltas: the top `depth` levels of each
 * side, the snapshot's depth. The server's deltas keep that window (a level
 * entering it comes with its size, one leaving it with size 0); levels beyond
 * it are dropped all the same, as a window-keeping client should.
 */
export class LocalBook {
  seq = 0;
  /** Levels kept per side (the snapshot's `depth`; a snapshot without one sets no bound). */
  depth = Infinity;
  readonly bids = new Map<number, number>();
  readonly asks = new Map<number, number>();

  reset(view: BookView & { depth?: number }): void {
    this.seq = view.seq;
    this.depth = view.depth ?? Infinity;
    this.bids.clear();
    this.asks.clear();
    for (const [p, s] of view.bids) this.bids.set(p, s);
    for (const [p, s] of view.asks) this.asks.set(p, s);
  }

  apply(delta: BookDelta): void {
    this.seq = delta.seq;
    for (const [side, levels] of [
      [this.bids, delta.bids],
      [this.asks, delta.asks],
    ] as const) {
      for (const [p, s] of levels) {
        if (s === 0) side.delete(p);
        else side.set(p, s);
      }
    }
    this.trim(this.bids, true);
    this.trim(this.asks, false);
  }

  /** Drops the levels beyond the window (none, from a server whose deltas keep it). */
  private trim(side: Map<number, number>, descending: boolean): void {
    if (side.size <= this.depth) return;
    const prices = [...side.keys()].sort((a, b) => (descending ? b - a : a - b));
    for (const p of prices.slice(this.depth)) side.delete(p);
  }

  /** Best first, to a depth. */
  levels(side: 'bids' | 'asks', depth = Infinity): LevelView[] {
    const map = side === 'bids' ? this.bids : this.asks;
    const prices = [...map.keys()].sort((a, b) => (side === 'bids' ? b - a : a - b));
    return prices.slice(0, depth).map((p) => [p, map.get(p)!]);
  }
}

export interface Channel {
  readonly name: string;
  /** The last seq delivered (−1: none yet). */
  lastSeq: number;
  /** The last event delivered, for a late follower of the channel. */
  last: RawChannelEvent | undefined;
  state: 'subscribing' | 'live' | 'unsubscribing';
  readonly book: LocalBook | undefined;
  readonly deliver: (event: RawChannelEvent) => void;
}

/** A server error answer, as the WebSocket carried it. */
export interface ChannelError {
  code: string;
  message: string;
  channel?: string;
}

export interface ChannelsOptions {
  /**
   * End a channel the server refuses or ends by name (default true: the SDK).
   * Off, it waits for the next reconnect to be asked for again (the
   * dashboard, whose views keep following a channel through a halt).
   */
  endRefused?: boolean;
  /** A RateLimited answer to a message other than a submission: call retrySubscribing later. */
  onRateLimited?: (retryAfterMs: number | undefined) => void;
}

export class Channels {
  private readonly map = new Map<string, Channel>();
  private readonly send: (request: object) => void;
  private readonly onError: (error: ChannelError) => void;
  private readonly options: ChannelsOptions;

  /** `send` writes a request if the connection is open (and may drop it otherwise). */
  constructor(
    send: (request: object) => void,
    onError: (error: ChannelError) => void,
    options: ChannelsOptions = {},
  ) {
    this.send = send;
    this.onError = onError;
    this.options = options;
  }

  get(name: string): Channel | undefined {
    return this.map.get(name);
  }

  /** Starts following `name` (one subscription on the wire); events go to `deliver`. */
  open(name: string, deliver: (event: RawChannelEvent) => void): Channel {
    const channel: Channel = {
      name,
      lastSeq: -1,
      last: undefined,
      state: 'subscribing',
      book: name.startsWith('book:') ? new LocalBook() : undefined,
      deliver,
    };
    this.map.set(name, channel);
    this.subscribe(channel);
    return channel;
  }

  /** Stops following `channel`, if it is still the one kept under its name. */
  close(channel: Channel): void {
    if (this.map.get(channel.name) !== channel) return;
    this.map.delete(channel.name);
    this.send({ op: 'unsubscribe', channel: channel.name });
  }

  /** After a (re)connect: every channel again, from what it holds. */
  resubscribeAll(): void {
    for (const channel of this.map.values()) {
      channel.state = 'subscribing';
      this.subscribe(channel);
    }
  }

  /**
   * Asks again for every channel still waiting for its `subscribed` (or, a
   * book re-asked after a gap, its `unsubscribed`) whose request is not still
   * waiting to be sent (`queued`): after a RateLimited answer, which does not
   * say which request it refused. A request that was in fact taken is
   * answered "already subscribed" (or "not subscribed"), and ignored.
   */
  retrySubscribing(queued: (name: string) => boolean): void {
    for (const channel of this.map.values()) {
      if (queued(channel.name)) continue;
      if (channel.state === 'subscribing') this.subscribe(channel);
      // A book's re-ask after a gap (unsubscribe, then subscribe) must not stall either.
      else if (channel.state === 'unsubscribing')
        this.send({ op: 'unsubscribe', channel: channel.name });
    }
  }

  /** One text frame from the server. */
  receive(text: string): void {
    let message: WsMessage;
    try {
      message = JSON.parse(text) as WsMessage;
    } catch {
      return;
    }
    // Not a message of the protocol (`null`, a number): reading its type would throw.
    if (typeof message !== 'object' || message === null) return;
    this.handle(message);
  }

  /** One message from the server, already parsed. */
  handle(message: WsMessage): void {
    switch (message.type) {
      case 'subscribed': {
        const channel = this.map.get(message.channel);
        if (channel?.state === 'subscribing') channel.state = 'live';
        return;
      }
      case 'unsubscribed': {
        const channel = this.map.get(message.channel);
        if (channel?.state === 'unsubscribing') {
          channel.state = 'subscribing';
          this.subscribe(channel);
        }
        return;
      }
      case 'snapshot':
      case 'update':
        return this.onData(message);
      case 'ended': {
        // The server ended the subscription: nothing more will come, and asking again is refused.
        const channel = this.map.get(message.channel);
        if (channel !== undefined) this.end(channel, message.seq, message.data);
        return;
      }
      case 'error': {
        // A refusal that names no channel (RateLimited) is retried
        // (retrySubscribing, when the owner calls it back).
        if (message.code === 'RateLimited' && message.id === undefined) {
          const ms = (message as { retryAfterMs?: unknown }).retryAfterMs;
          this.options.onRateLimited?.(typeof ms === 'number' ? ms : undefined);
        }
        const named = message.channel === undefined ? undefined : this.map.get(message.channel);
        if (named?.state === 'live' && message.message === ALREADY_SUBSCRIBED) {
          // The answer to our own request asked again after a RateLimited
          // answer (retrySubscribing), whose first asking had been taken:
          // its `subscribed` came first. Nothing the owner must hear of.
          return;
        }
        if (named !== undefined && message.code === 'MarketEnded') {
          // Ended while we were away (or before we asked): over, whatever endRefused says,
          // since asking again at every reconnect would only be refused again.
          const ended = message.ended as MarketEndView | undefined;
          if (typeof ended?.height === 'number') this.end(named, ended.height, ended);
          else this.map.delete(named.name);
        } else if (named?.state === 'subscribing' && message.message === ALREADY_SUBSCRIBED) {
          // The server holds a subscription we do not follow (our unsubscribe of
          // it was rate-limited, then it was asked for again): the server
          // answers in order, so a repeated request's answer comes after its
          // `subscribed`, never here. Re-ask it, for a fresh snapshot.
          named.state = 'unsubscribing';
          this.send({ op: 'unsubscribe', channel: named.name });
        } else if (named?.state === 'unsubscribing' && message.message === NOT_SUBSCRIBED) {
          // The server no longer holds it: as after `unsubscribed`, ask for it again.
          named.state = 'subscribing';
          this.subscribe(named);
        } else if (
          this.options.endRefused !== false &&
          named !== undefined &&
          (named.state === 'subscribing' || named.state === 'live') &&
          message.code !== 'RateLimited' &&
          message.message !== ALREADY_SUBSCRIBED &&
          message.message !== NOT_SUBSCRIBED
        ) {
          // Refused by name (unknown instrument, too many subscriptions) or
          // ended (a read refused after `subscribed`): over. Kept, it would
          // wait for data for good and be asked for again at every reconnect.
          this.map.delete(named.name);
        }
        this.onError({
          code: message.code,
          message: message.message,
          ...(message.channel !== undefined ? { channel: message.channel } : {}),
        });
        return;
      }
      case 'pong':
        return;
    }
  }

  /** The channel's market ended: its consumer gets the last event, and it is followed no more. */
  private end(channel: Channel, seq: number, data: MarketEndView): void {
    this.map.delete(channel.name);
    channel.deliver({ type: 'ended', channel: channel.name, seq, data });
  }

  private subscribe(channel: Channel): void {
    this.send({
      op: 'subscribe',
      channel: channel.name,
      ...(channel.lastSeq >= 0 ? { fromSeq: channel.lastSeq } : {}),
    });
  }

  private onData(message: Extract<WsMessage, { type: 'snapshot' | 'update' }>): void {
    const channel = this.map.get(message.channel);
    if (channel === undefined || channel.state !== 'live') return;
    const { seq } = message;
    if (message.type === 'update' && seq <= channel.lastSeq) return;
    if (channel.book !== undefined) {
      if (message.type === 'snapshot') {
        channel.book.reset(message.data as ChannelData<'book', 'snapshot'>);
      } else if ((message.data as BookDelta).prevSeq !== channel.lastSeq) {
        // A gap: ask for the channel again from what we hold; the server replays or sends a snapshot.
        channel.state = 'unsubscribing';
        this.send({ op: 'unsubscribe', channel: channel.name });
        return;
      } else {
        channel.book.apply(message.data as BookDelta);
      }
    } else if (message.type === 'snapshot' && seq <= channel.lastSeq) {
      // Nothing the channel has not delivered: a block, trades or an account
      // state it holds at that seq. It comes when the channel was unsubscribed
      // and subscribed again before the server answered: the first request's
      // answers reach the new channel too, then the second's snapshot.
      return;
    }
    channel.lastSeq = seq;
    const event: RawChannelEvent = {
      type: message.type,
      channel: channel.name,
      seq,
      data: message.data,
    };
    if (channel.book !== undefined) event.book = channel.book;
    channel.last = event;
    channel.deliver(event);
  }
}
