import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';

/** What the figures were measured on; printed with them and stored in every result file. */
export type Machine = {
  date: string;
  cpu: string;
  cores: number;
  memory_gb: number;
  os: string;
  kernel: string;
  node: string;
  /** 1, 5 and 15 minute load averages when the run started: a busy machine gives lower figures. */
  load_average: number[];
};

export function describeMachine(): Machine {
  return {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    memory_gb: Math.round((totalmem() / 1_073_741_824) * 10) / 10,
    os: osName(),
    kernel: release(),
    node: process.version,
    load_average: loadavg().map((value) => Math.round(value * 100) / 100),
  };
}

function osName(): string {
  try {
    const text = readFileSync('/etc/os-release', 'utf8');
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text)?.[1] ?? process.platform;
  } catch {
    return process.platform;
  }
}
