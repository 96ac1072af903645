// `zomma --help`: the list names each command with its own summary.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COMMANDS } from '../../src/cli/commands.ts';

test("each command's line in the help list is the command's own summary", async () => {
  for (const entry of COMMANDS) {
    const command = await entry.load();
    assert.equal(entry.summary, command.summary, entry.name);
    assert.equal(entry.name, command.name);
  }
});
