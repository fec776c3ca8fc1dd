import { execFileSync } from 'node:child_process';

/**
 * Builds dist/ once per run: the CLI tests spawn the compiled entry point
 * and the worker pool loads compiled worker files.
 */
export default function setup(): void {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
}
