/**
 * Response times in milliseconds as autocannon measured them (from its
 * hrtime around each request). autocannon's own histogram keeps whole
 * milliseconds, too coarse for answers that take a fraction of one, so the
 * load child records each value here and reads percentiles at full
 * precision.
 */
export class LatencyRecorder {
  #values = new Float64Array(1 << 16);
  #count = 0;
  #sorted = true;

  get count(): number {
    return this.#count;
  }

  record(ms: number): void {
    if (this.#count === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2);
      grown.set(this.#values);
      this.#values = grown;
    }
    this.#values[this.#count++] = ms;
    this.#sorted = false;
  }

  /** The value below which `fraction` of the recorded ones lie (nearest rank); NaN when empty. */
  percentile(fraction: number): number {
    if (!(fraction > 0 && fraction <= 1)) throw new RangeError('fraction must be in (0, 1]');
    if (this.#count === 0) return Number.NaN;
    const values = this.#values.subarray(0, this.#count);
    if (!this.#sorted) {
      values.sort();
      this.#sorted = true;
    }
    return values[Math.ceil(fraction * this.#count) - 1]!;
  }
}
