/**
 * Amounts and `monero:` payment URIs for the checkout page. Amounts stay
 * `bigint` piconero until the last step, so nothing passes through a float
 * and amounts above 2^53 atomic units print exactly.
 */

const ATOMIC_DECIMALS = 12;
const ATOMIC_PER_XMR = 10n ** BigInt(ATOMIC_DECIMALS);

// Monero addresses are base58 in Monero's alphabet; checking it keeps a
// wrong argument from smuggling `?`, `&` or `#` into the URI.
const BASE58_TEXT = /^[1-9A-HJ-NP-Za-km-z]+$/;

export type PaymentUriParts = {
  address: string;
  amountAtomic: bigint;
  /** Shown by the wallet beside the amount; merchant text, percent-encoded here. */
  description?: string;
};

/**
 * Piconero as a decimal XMR string: all twelve decimals when needed, with
 * trailing zeros (and a bare point) trimmed, so 1.5 XMR reads "1.5".
 */
export function formatXmr(atomic: bigint): string {
  if (typeof atomic !== 'bigint') {
    throw new TypeError(`atomic must be a bigint, not ${typeof atomic}`);
  }
  if (atomic < 0n) throw new RangeError(`atomic must be >= 0, got ${atomic}`);

  const whole = atomic / ATOMIC_PER_XMR;
  const fraction = (atomic % ATOMIC_PER_XMR).toString().padStart(ATOMIC_DECIMALS, '0');
  const trimmed = fraction.replace(/0+$/, '');
  return trimmed === '' ? whole.toString() : `${whole}.${trimmed}`;
}

/**
 * A URI in the Monero URI scheme (`monero:<address>?tx_amount=…`) that a
 * wallet opens with the address and amount filled in. `tx_amount` is in
 * XMR, not piconero, as the scheme defines it.
 */
export function paymentUri(parts: PaymentUriParts): string {
  const { address, amountAtomic, description } = parts;
  if (typeof address !== 'string' || !BASE58_TEXT.test(address)) {
    throw new TypeError('address must be a non-empty base58 Monero address');
  }

  let uri = `monero:${address}?tx_amount=${formatXmr(amountAtomic)}`;
  if (description !== undefined && description !== '') {
    uri += `&tx_description=${percentEncode(description)}`;
  }
  return uri;
}

/**
 * UTF-8 percent-encoding that leaves only RFC 3986 unreserved characters
 * bare. `encodeURIComponent` also leaves `!'()*` bare; wallets differ in
 * how they treat those, so they are encoded too.
 */
function percentEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}
