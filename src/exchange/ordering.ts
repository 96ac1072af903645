// The in-block ordering rule, applied by the state machine itself (the
// proposer's order is not trusted beyond arrival order within a class):
//   class 0: cancel, cancelAll
//   class 1: post-only placements
//   class 2: everything else
// stable within each class. A batch takes the latest class of its actions, so
// a batch runs no earlier than its latest-class action would alone: putting a
// cancel first in a batch cannot carry a taking order ahead of post-only ones.
// Cost: O(txs + actions).

import type { Action } from './tx/types.ts';

export function actionClass(a: Action): number {
  switch (a.kind) {
    case 'cancel':
    case 'cancelAll':
      return 0;
    case 'placeOrder':
      return a.timeInForce === 'postOnly' ? 1 : 2;
    case 'batch': {
      let c = 0;
      for (const x of a.actions) c = Math.max(c, actionClass(x));
      return a.actions.length === 0 ? 2 : c;
    }
    default:
      return 2;
  }
}

/** Indices of txs in execution order. */
export function executionOrder(actions: readonly Action[]): number[] {
  // Each action's class once, then one pass per class into the one array
  // returned: no per-class arrays to grow and copy for every block.
  const n = actions.length;
  const classes = new Uint8Array(n);
  for (let i = 0; i < n; i++) classes[i] = actionClass(actions[i]!);
  const order = new Array<number>(n);
  let at = 0;
  for (let c = 0; c <= 2; c++) {
    for (let i = 0; i < n; i++) if (classes[i] === c) order[at++] = i;
  }
  return order;
}
