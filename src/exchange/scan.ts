// Which holders the liquidation scan must look at when marks move (derived
// data, not state: rebuilt from the holders after a restore).
//
// An account looked at in block h gets a slack memo taken at the marks of h
// (margin.ts, liquidationSlack), so every account filed in block h shares
// those marks. Filing them together lets a block skip the whole group when
// every mark is within the group's smallest slack of its marks — each account
// of it is then within its own slack, which is exactly when the scan would
// skip it one by one. A group whose bound is exceeded is walked account by
// account with the same test as before, so the accounts looked at, and hence
// the results, are the same; only the walk over holders that cannot have
// moved is saved. Accounts without a usable slack (−1) sit in a set looked
// at whenever a market they hold moved. Cost per block: O(groups × markets)
// plus the accounts of the groups whose bound the marks exceeded.

import { assert } from '../lib/assert.ts';
import type { Account, ExchangeState } from './state.ts';

export class ScanGroup {
  readonly marks: number[];
  /** Accounts filed here; an entry is live while its account's scanGroup is this group. */
  accounts: Account[] = [];
  live = 0;
  /** At most the smallest slack of the live accounts. */
  minSlack = Number.MAX_SAFE_INTEGER;
  constructor(marks: number[]) {
    this.marks = marks;
  }
}

export class ScanSchedule {
  private groups: ScanGroup[] = [];
  private readonly unknown = new Set<Account>();
  private current: ScanGroup | null = null;
  private ready = false;

  /** Opens this block's group at the current marks; after a restore, files every holder as unknown. */
  begin(state: ExchangeState): void {
    if (!this.ready) {
      this.ready = true;
      for (const market of state.markets) {
        for (const account of market.holders) this.fileUnknown(account);
      }
    }
    // Accounts with a slack hold genesis markets only (margin.ts): their marks are the group's.
    const marks: number[] = [];
    for (let i = 0; i < state.genesisMarketCount; i++) marks.push(state.markets[i]!.markTicks);
    this.current = new ScanGroup(marks);
  }

  /** Files an account by the slack it was just given (no position: not filed). */
  file(account: Account): void {
    this.leave(account);
    if (account.positionCount === 0) return;
    if (account.slackTicks < 0) {
      this.fileUnknown(account);
      return;
    }
    const group = this.current!;
    group.accounts.push(account);
    group.live++;
    account.scanGroup = group;
    if (account.slackTicks < group.minSlack) group.minSlack = account.slackTicks;
  }

  /**
   * Calls `visit` for every filed account that holds a position in a market
   * with marksMoved[i] and is not within its slack (`within`); drops accounts
   * that hold no position any more.
   */
  visitMoved(
    state: ExchangeState,
    marksMoved: readonly boolean[],
    within: (account: Account) => boolean,
    visit: (account: Account) => void,
  ): void {
    for (const account of this.unknown) {
      if (account.positionCount === 0) this.leave(account);
      else if (holdsMoved(account, marksMoved)) visit(account);
    }
    const markets = state.markets;
    let kept = 0;
    for (const group of this.groups) {
      if (group.live > 0 && !groupWithin(group, markets)) {
        this.walk(group, marksMoved, within, visit);
      }
      if (group.live === 0) continue;
      if (group.accounts.length > 2 * group.live + 32) compact(group);
      this.groups[kept++] = group;
    }
    this.groups.length = kept;
  }

  /**
   * visitMoved without changing anything (no account leaves, no group bound
   * moves), for a look in the middle of a block (withdraw.ts): the same
   * accounts but for those without a position, which it skips. Before the
   * first block after a restore nothing is filed yet: every holder of a moved
   * market is visited (one holding several of them, once per market).
   */
  peekMoved(
    state: ExchangeState,
    marksMoved: readonly boolean[],
    within: (account: Account) => boolean,
    visit: (account: Account) => void,
  ): void {
    if (!this.ready) {
      for (let i = 0; i < marksMoved.length; i++) {
        if (marksMoved[i] === true) for (const account of state.markets[i]!.holders) visit(account);
      }
      return;
    }
    for (const account of this.unknown) {
      if (account.positionCount !== 0 && holdsMoved(account, marksMoved)) visit(account);
    }
    const markets = state.markets;
    for (const group of this.groups) {
      if (group.live === 0 || groupWithin(group, markets)) continue;
      for (const account of group.accounts) {
        if (account.scanGroup !== group || account.positionCount === 0) continue;
        if (holdsMoved(account, marksMoved) && !within(account)) visit(account);
      }
    }
  }

  /** Closes the block's group. */
  end(): void {
    const group = this.current!;
    if (group.live > 0) this.groups.push(group);
    this.current = null;
  }

  /**
   * The schedule's own invariants, O(holders): every holder is filed, and a
   * group's marks and bound hold for each of its live accounts (so skipping a
   * group skips only accounts within their slack). For tests.
   */
  check(state: ExchangeState): void {
    for (const market of state.markets) {
      for (const account of market.holders) {
        assert(account.scanGroup !== null || account.scanUnknown, 'a holder is not filed');
      }
    }
    for (const group of this.groups) {
      let live = 0;
      for (const account of group.accounts) {
        if (account.scanGroup !== group) continue;
        live++;
        assert(account.slackTicks >= group.minSlack, 'a group bound above a slack');
        assert(
          group.marks.every((mark, i) => account.positions[i]!.slackMarkTicks === mark),
          'a slack taken at other marks',
        );
      }
      assert(live === group.live, 'group count drifted');
    }
    for (const account of this.unknown) assert(account.scanUnknown, 'unknown set drifted');
  }

  private walk(
    group: ScanGroup,
    marksMoved: readonly boolean[],
    within: (account: Account) => boolean,
    visit: (account: Account) => void,
  ): void {
    const list = group.accounts;
    const n = list.length;
    group.minSlack = Number.MAX_SAFE_INTEGER;
    for (let i = 0; i < n; i++) {
      const account = list[i]!;
      if (account.scanGroup !== group) continue;
      if (account.positionCount === 0) this.leave(account);
      else if (holdsMoved(account, marksMoved) && !within(account)) visit(account);
      // Still here (visit files the account elsewhere): it bounds the group.
      if (account.scanGroup === group && account.slackTicks < group.minSlack) {
        group.minSlack = account.slackTicks;
      }
    }
    compact(group);
  }

  private fileUnknown(account: Account): void {
    this.leave(account);
    this.unknown.add(account);
    account.scanUnknown = true;
  }

  private leave(account: Account): void {
    const group = account.scanGroup;
    if (group !== null) {
      group.live--;
      account.scanGroup = null;
    }
    if (account.scanUnknown) {
      this.unknown.delete(account);
      account.scanUnknown = false;
    }
  }
}

function holdsMoved(account: Account, marksMoved: readonly boolean[]): boolean {
  const positions = account.positions;
  for (let i = 0; i < positions.length; i++) {
    if (marksMoved[i] === true && positions[i]!.sizeLots !== 0) return true;
  }
  for (const p of account.listed) {
    if (marksMoved[p.market] === true && p.sizeLots !== 0) return true;
  }
  return false;
}

/** Every genesis market's mark within the group's smallest slack of the group's marks (all of them: stricter than needed). */
function groupWithin(group: ScanGroup, markets: ExchangeState['markets']): boolean {
  const slack = group.minSlack;
  for (let i = 0; i < group.marks.length; i++) {
    const moved = markets[i]!.markTicks - group.marks[i]!;
    if (moved > slack || -moved > slack) return false;
  }
  return true;
}

function compact(group: ScanGroup): void {
  group.accounts = group.accounts.filter((a) => a.scanGroup === group);
}
