import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';

import { TalliedCounter } from '../../src/metrics.js';

function counter(registry = new Registry()) {
  return new TalliedCounter({
    name: 'test_events_total',
    help: 'events',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
}

async function valueOf(events: TalliedCounter<'kind'>, kind: string): Promise<number | undefined> {
  return (await events.get()).values.find((v) => v.labels.kind === kind)?.value;
}

describe('TalliedCounter', () => {
  it('adds each tally once, however often the counter is read', async () => {
    const events = counter();
    const a = events.tally({ kind: 'a' });
    a.count += 3;
    expect(await valueOf(events, 'a')).toBe(3);
    expect(await valueOf(events, 'a')).toBe(3);
    a.count += 2;
    expect(await valueOf(events, 'a')).toBe(5);
  });

  it('sums tallies of the same label set and keeps label sets apart', async () => {
    const events = counter();
    const first = events.tally({ kind: 'a' });
    const second = events.tally({ kind: 'a' });
    const other = events.tally({ kind: 'b' });
    first.count += 1;
    second.count += 4;
    other.count += 7;
    expect(await valueOf(events, 'a')).toBe(5);
    expect(await valueOf(events, 'b')).toBe(7);
  });

  it('shows a label set at zero before its first event, in the scrape text', async () => {
    const registry = new Registry();
    const events = counter(registry);
    events.tally({ kind: 'quiet' });
    expect(await registry.metrics()).toContain('test_events_total{kind="quiet"} 0');
  });
});
