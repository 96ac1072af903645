// registerAgent and revokeAgent: the address's own key lets another key trade
// (place, cancel, amend) for all its subaccounts until expiresAtMs of block
// time, or until revoked. Agents never withdraw, transfer or manage agents.
// Cost: O(1); O(AGENTS_PER_ADDRESS_MAX) for a registration at the cap.

import { bytesKey } from './keys.ts';
import { AGENTS_PER_ADDRESS_MAX } from '../lib/limits.ts';
import type { Ctx } from './context.ts';
import type { ActionResult } from './results.ts';
import type { RegisterAgent, RevokeAgent } from './tx/types.ts';

export function registerAgent(ctx: Ctx, a: RegisterAgent): ActionResult {
  const { state, principal } = ctx;
  if (!ctx.isMaster) {
    return {
      ok: false,
      kind: 'registerAgent',
      code: 'NotPermitted',
      message: 'agents cannot add agents',
    };
  }
  if (a.expiresAtMs <= ctx.blockTimeMs) {
    return { ok: false, kind: 'registerAgent', code: 'Expired', message: 'expiresAtMs has passed' };
  }
  const key = bytesKey(a.agentPublicKey);
  if (key === ctx.signerKey) {
    return {
      ok: false,
      kind: 'registerAgent',
      code: 'NotPermitted',
      message: 'the own key is no agent',
    };
  }
  const agents = (principal.agents ??= new Map());
  // An expired agent can do nothing but still holds a place: at the cap, the
  // expired ones go first, so an address that never revokes is not locked out
  // of new agents. O(AGENTS_PER_ADDRESS_MAX), only at the cap.
  if (!agents.has(key) && agents.size >= AGENTS_PER_ADDRESS_MAX) {
    for (const [k, agent] of agents) if (agent.expiresAtMs <= ctx.blockTimeMs) agents.delete(k);
  }
  if (!agents.has(key) && agents.size >= AGENTS_PER_ADDRESS_MAX) {
    return {
      ok: false,
      kind: 'registerAgent',
      code: 'TooManyAgents',
      message: `at most ${AGENTS_PER_ADDRESS_MAX} agents`,
    };
  }
  agents.set(key, {
    publicKey: a.agentPublicKey.slice(),
    expiresAtMs: a.expiresAtMs,
    name: a.name ?? '',
  });
  state.markPrincipal(principal);
  return { ok: true, kind: 'registerAgent' };
}

export function revokeAgent(ctx: Ctx, a: RevokeAgent): ActionResult {
  const { state, principal } = ctx;
  if (!ctx.isMaster) {
    return {
      ok: false,
      kind: 'revokeAgent',
      code: 'NotPermitted',
      message: 'agents cannot revoke agents',
    };
  }
  if (principal.agents === null || !principal.agents.delete(bytesKey(a.agentPublicKey))) {
    return { ok: false, kind: 'revokeAgent', code: 'UnknownAgent', message: 'no such agent' };
  }
  state.markPrincipal(principal);
  return { ok: true, kind: 'revokeAgent' };
}
