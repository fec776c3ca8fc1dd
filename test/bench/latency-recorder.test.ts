import { describe, expect, it } from 'vitest';

import { LatencyRecorder } from '../../bench/latency-recorder.js';

describe('LatencyRecorder', () => {
  it('answers nearest-rank percentiles at full precision', () => {
    const recorder = new LatencyRecorder();
    for (let i = 100; i >= 1; i--) recorder.record(i / 1000);

    expect(recorder.percentile(0.5)).toBe(0.05);
    expect(recorder.percentile(0.99)).toBe(0.099);
    expect(recorder.percentile(1)).toBe(0.1);
  });

  it('keeps every value past its initial capacity', () => {
    const recorder = new LatencyRecorder();
    for (let i = 0; i < 200_000; i++) recorder.record(i);

    expect(recorder.count).toBe(200_000);
    expect(recorder.percentile(1)).toBe(199_999);
  });

  it('answers NaN when nothing was recorded', () => {
    expect(new LatencyRecorder().percentile(0.5)).toBeNaN();
  });

  it('refuses a fraction outside (0, 1]', () => {
    expect(() => new LatencyRecorder().percentile(0)).toThrow(RangeError);
  });
});
