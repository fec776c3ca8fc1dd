import { spawnSync } from 'node:child_process';

/**
 * Builds dist/ once per run: the CLI tests spawn the compiled entry point
 * and the worker pool loads compiled worker files. Type errors do not stop
 * the emit; `npm test` type-checks before it runs vitest.
 */
export default function setup(): void {
  spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
}
