// Where CLI commands print. Tests pass a capturing Io; the binary passes the process's.

import { accessSync, constants, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { ZommaError } from '../lib/errors.ts';

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: Io = {
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
};

/** A usage error: printed with the command's help and exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Bad input found before anything is sent (a key file, a value the
 * transaction builder refuses): exit code 2 like a usage error, printed with
 * its code and without the usage text, which would not help.
 */
export class InputError extends ZommaError {}

/** A command's util.parseArgs options. */
export type CommandOptions = NonNullable<ParseArgsConfig['options']>;

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /**
   * The options run() gives util.parseArgs: an unknown option is told the
   * nearest of those the usage names (not a flag of another command the
   * usage mentions, nor a spelling kept only for old scripts).
   */
  options: CommandOptions;
  run(args: string[], io: Io): Promise<number>;
}

/**
 * Writes a file a flag names; a path that cannot be written (no such
 * directory, no permission, a full disk) is the user's to fix, so it is a
 * usage error naming the flag, not a stack trace.
 */
/**
 * Refuses, before any work, a path writeFlagFile could not write: its
 * folder missing or not writable, the path itself a folder or not writable.
 * A simulation or a stress run of minutes is not lost to a typo in where its
 * output goes. Creates nothing (a refused run leaves no empty file behind).
 */
export function checkFlagFile(flag: string, path: string): void {
  try {
    let exists = true;
    try {
      if (statSync(path).isDirectory()) {
        throw Object.assign(new Error('a folder'), { code: 'EISDIR' });
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      exists = false;
    }
    accessSync(exists ? path : dirname(resolve(path)), constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new UsageError(`--${flag} ${path}: cannot write the file (${code})`);
  }
}

export function writeFlagFile(flag: string, path: string, data: string | Uint8Array): void {
  try {
    writeFileSync(path, data);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new UsageError(`--${flag} ${path}: cannot write the file (${code})`);
  }
}
