import { keccak_256 } from '@noble/hashes/sha3.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  AddressError,
  type AddressFailure,
  decodeAddress,
  encodeAddress,
  isPaymentIdHex,
  makeIntegratedAddress,
  type MoneroNetwork,
  networkOfAddress,
} from '../../src/monero/address.js';
import { Base58Error, decodeBase58, encodeBase58 } from '../../src/monero/base58.js';

// Produced by monero-wallet-rpc 0.18.0.0 (`get_address`,
// `make_integrated_address {payment_id: PID}`, `create_address`) on a fresh
// wallet per network; the public keys are what monero-wallet-cli's
// `spendkey` and `viewkey` commands printed for the same wallets.
const PID = '0123456789abcdef';
const VECTORS: Record<
  MoneroNetwork,
  { standard: string; integrated: string; subaddress: string; spend: string; view: string }
> = {
  mainnet: {
    standard:
      '45CASDSdmXyVmqEmMETxV2GVVjNPEXbsMfJKvCDijPbujFpJ198UuLG3MWxpFrZyeN54wXKJFg9LJK3DH1nBWQ9FRqwSWdT',
    integrated:
      '4EtqT2G8NoVVmqEmMETxV2GVVjNPEXbsMfJKvCDijPbujFpJ198UuLG3MWxpFrZyeN54wXKJFg9LJK3DH1nBWQ9FdoKV7AsE9QpU1Z6VqJ',
    subaddress:
      '86a8Ssy1PWdVieV8avBEsgXqFJrkAHTSRhqWTPRtLHG1g7B3U1Z5uLWZWzStEFMPtARpGfzSQXqEiDFWBZ3PoXTwKgr4QiU',
    spend: '5e343dfaae5aa4ac05b4ab6bb18ef55c9dce20f9e52cb0e4f91edd7d4d23e0fc',
    view: 'a0f638e41befd50e127267c1baf0671852113a1e512f976bd7cb3f985f6662dc',
  },
  stagenet: {
    standard:
      '5BU6tCYG5fGY8RuNFEh6Y8gNpVru2y3wFfZPgoHyWP3UVgDaBitUD7WVUN31oh7ym7417cdH9kvyxAjk263dmXF89vZJn2V',
    integrated:
      '5MAmu1MkgvnY8RuNFEh6Y8gNpVru2y3wFfZPgoHyWP3UVgDaBitUD7WVUN31oh7ym7417cdH9kvyxAjk263dmXF8EDSe9MQgQgtU1ma9Rb',
    subaddress:
      '79nWP3sNTAVi96A8uwvGZ4XDT3wZqNC3YHjtfUweogqsBF82RvEoFNCeadzPvz1crE1zAfREcfrARe8HFgp51riNCZNgw27',
    spend: 'fe4f5046c86aa3ba1a4adf356c26d1eb6a33847a55f622e686a919abfcf4afab',
    view: '718991eb769d31aa38ba3ba56acc0e11f294cefb3eef133a369948fe948a8b4f',
  },
  testnet: {
    standard:
      '9yKdBQ7eKEU8ncuh1AAtoUSFtMptaZwTYiKqFxn7fY9o9vKAnPCKnmuCdYe25RfYzR5gkKWX66ikpBT1QoRnQvjgLTX5RcV',
    integrated:
      'A92JCCw8vVz8ncuh1AAtoUSFtMptaZwTYiKqFxn7fY9o9vKAnPCKnmuCdYe25RfYzR5gkKWX66ikpBT1QoRnQvjgVmfCSRZYxZzU37JD3T',
    subaddress:
      'BbAdVetAUoEMCDXLNeVNCrLKUW3ccUyCjP8FZzmY1B2EBXr8Fukxndm9LB6LE1WKiverBnwFLPca2QCKUXdzNU6GS3EYNM7',
    spend: 'a2699f5a65919d2e8d7b174d0f16ab96ffe75922e2294bf7106e1e44e6c98a35',
    view: '530a5d68d267804588238efa4d540e1c02f34dc84134c93e77860e0125ab87ac',
  },
};
const NETWORKS = Object.keys(VECTORS) as MoneroNetwork[];
const MAINNET = VECTORS.mainnet;

/** Wraps raw bytes as an address with a correct checksum, to reach checks past it. */
function withChecksum(body: Uint8Array): string {
  const full = new Uint8Array(body.length + 4);
  full.set(body);
  full.set(keccak_256(body).subarray(0, 4), body.length);
  return encodeBase58(full);
}

function keysOf(vector: { spend: string; view: string }): Uint8Array {
  return hexToBytes(vector.spend + vector.view);
}

function failureOf(address: string): AddressFailure | 'accepted' {
  try {
    decodeAddress(address);
    return 'accepted';
  } catch (err) {
    expect(err).toBeInstanceOf(AddressError);
    expect((err as AddressError).code).toBe('invalid_address');
    return (err as AddressError).reason;
  }
}

describe('decodeBase58', () => {
  it('returns the bytes given to encodeBase58, for every tail length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 90 }), (bytes) => {
        expect(decodeBase58(encodeBase58(bytes))).toEqual(bytes);
      }),
    );
  });

  it('encodes each block length to the width in the size table', () => {
    const widths = [0, 2, 3, 5, 6, 7, 9, 10, 11];
    widths.forEach((width, bytes) => {
      expect(encodeBase58(new Uint8Array(bytes).fill(0xff))).toHaveLength(width);
      expect(encodeBase58(new Uint8Array(8 + bytes))).toHaveLength(11 + width);
    });
  });

  it('encodes zero bytes as the first digit, keeping the fixed width', () => {
    expect(encodeBase58(new Uint8Array(9))).toBe('1'.repeat(13));
  });

  it('rejects a last block whose width is not in the size table', () => {
    for (const chars of [1, 4, 8, 12, 15, 19]) {
      expect(() => decodeBase58('2'.repeat(chars))).toThrow(
        expect.objectContaining({ reason: 'bad_length' }),
      );
    }
  });

  it('rejects characters outside the alphabet', () => {
    for (const bad of ['0', 'O', 'I', 'l', '+', ' ', 'é']) {
      expect(() => decodeBase58(`1${bad}`)).toThrow(Base58Error);
    }
  });

  it('rejects a block whose value overflows its byte width', () => {
    expect(() => decodeBase58('zzzzzzzzzzz')).toThrow(
      expect.objectContaining({ reason: 'block_overflow' }),
    );
    expect(() => decodeBase58('zz')).toThrow(expect.objectContaining({ reason: 'block_overflow' }));
  });
});

describe('decodeAddress', () => {
  for (const network of NETWORKS) {
    const vector = VECTORS[network];

    it(`gives the ${network} public keys the wallet reports, for every kind`, () => {
      const standard = decodeAddress(vector.standard);
      expect(standard).toEqual({
        network,
        kind: 'standard',
        publicSpendKey: hexToBytes(vector.spend),
        publicViewKey: hexToBytes(vector.view),
      });

      const integrated = decodeAddress(vector.integrated);
      expect(integrated.kind).toBe('integrated');
      expect(integrated.network).toBe(network);
      expect(integrated.publicSpendKey).toEqual(standard.publicSpendKey);
      expect(integrated.publicViewKey).toEqual(standard.publicViewKey);
      expect(bytesToHex(integrated.paymentId as Uint8Array)).toBe(PID);

      const sub = decodeAddress(vector.subaddress);
      expect(sub.kind).toBe('subaddress');
      expect(sub.network).toBe(network);
      expect(sub.paymentId).toBeUndefined();
      expect(sub.publicSpendKey).not.toEqual(standard.publicSpendKey);
    });
  }

  it('detects a changed character at every position', () => {
    const address = MAINNET.integrated;
    for (let i = 0; i < address.length; i++) {
      const swapped = address[i] === '2' ? '3' : '2';
      const corrupted = address.slice(0, i) + swapped + address.slice(i + 1);
      expect(failureOf(corrupted)).toMatch(/^(bad_checksum|bad_encoding)$/);
    }
  });

  it('reports bad_checksum when only the checksum bytes differ', () => {
    const bytes = decodeBase58(MAINNET.standard);
    bytes.set([(bytes.at(-1) as number) ^ 0x01], bytes.length - 1);
    expect(failureOf(encodeBase58(bytes))).toBe('bad_checksum');
  });

  it('reports bad_length for truncated, extended, empty and oversized input', () => {
    expect(failureOf(MAINNET.standard.slice(0, -1))).toBe('bad_length');
    expect(failureOf(MAINNET.standard.slice(0, 88))).toBe('bad_length');
    expect(failureOf('')).toBe('bad_length');
    expect(failureOf(MAINNET.integrated + '1')).toBe('bad_length');
    expect(failureOf(MAINNET.standard.repeat(3))).toBe('bad_length');
  });

  it('reports bad_length when the payload size does not fit the kind', () => {
    const body = new Uint8Array(1 + 64 + 8);
    body[0] = 18;
    expect(failureOf(withChecksum(body))).toBe('bad_length');
    body[0] = 19;
    expect(failureOf(withChecksum(body.subarray(0, 65)))).toBe('bad_length');
  });

  it('reports bad_character for characters outside the base58 alphabet', () => {
    for (const bad of ['0', 'O', 'I', 'l', '-', ' ']) {
      expect(failureOf(bad + MAINNET.standard.slice(1))).toBe('bad_character');
    }
  });

  it('reports unknown_prefix for a well-formed address of another coin', () => {
    const body = new Uint8Array(1 + 64);
    body[0] = 20;
    expect(failureOf(withChecksum(body))).toBe('unknown_prefix');
  });

  it('reads a multi-byte varint prefix before judging it', () => {
    // 300 = 0b10_0101100: low group 0x2c with the continuation bit, then 0x02.
    const body = new Uint8Array(2 + 64);
    body.set([0xac, 0x02]);
    expect(failureOf(withChecksum(body))).toBe('unknown_prefix');
  });

  it('rejects a non-canonical varint spelling of a valid prefix', () => {
    const body = new Uint8Array(2 + 64);
    body.set([18 | 0x80, 0x00]);
    expect(failureOf(withChecksum(body))).toBe('unknown_prefix');
  });
});

describe('networkOfAddress', () => {
  it('names the network of each kind of address', () => {
    for (const network of NETWORKS) {
      const { standard, integrated, subaddress } = VECTORS[network];
      expect([standard, integrated, subaddress].map(networkOfAddress)).toEqual([
        network,
        network,
        network,
      ]);
    }
  });

  it('throws AddressError for an invalid address', () => {
    expect(() => networkOfAddress('4')).toThrow(AddressError);
  });
});

describe('makeIntegratedAddress', () => {
  for (const network of NETWORKS) {
    it(`matches the wallet's make_integrated_address on ${network}`, () => {
      const { standard, integrated } = VECTORS[network];
      expect(makeIntegratedAddress(standard, hexToBytes(PID))).toBe(integrated);
    });
  }

  it('yields an address that decodes to the same keys and payment id', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 8, maxLength: 8 }), (pid) => {
        const decoded = decodeAddress(makeIntegratedAddress(MAINNET.standard, pid));
        expect(decoded.paymentId).toEqual(pid);
        const keys = new Uint8Array([...decoded.publicSpendKey, ...decoded.publicViewKey]);
        expect(keys).toEqual(keysOf(MAINNET));
      }),
    );
  });

  it('refuses a subaddress or an integrated address as the primary', () => {
    const pid = hexToBytes(PID);
    for (const address of [MAINNET.subaddress, MAINNET.integrated]) {
      expect(() => makeIntegratedAddress(address, pid)).toThrow(
        expect.objectContaining({ code: 'invalid_address', reason: 'wrong_kind' }),
      );
    }
  });

  it('throws RangeError for a payment id that is not 8 bytes', () => {
    expect(() => makeIntegratedAddress(MAINNET.standard, new Uint8Array(7))).toThrow(RangeError);
    expect(() => makeIntegratedAddress(MAINNET.standard, new Uint8Array(32))).toThrow(RangeError);
  });

  it('throws AddressError for an invalid primary address', () => {
    expect(() => makeIntegratedAddress('nope', new Uint8Array(8))).toThrow(AddressError);
  });
});

describe('encodeAddress', () => {
  it('reproduces every wallet vector from its decoded parts', () => {
    for (const network of NETWORKS) {
      for (const kind of ['standard', 'integrated', 'subaddress'] as const) {
        const address = VECTORS[network][kind];
        expect(encodeAddress(decodeAddress(address))).toBe(address);
      }
    }
  });

  it('throws TypeError for a payment id on a non-integrated address', () => {
    const parts = { ...decodeAddress(MAINNET.standard), paymentId: new Uint8Array(8) };
    expect(() => encodeAddress(parts)).toThrow(TypeError);
  });

  it('throws RangeError for a key that is not 32 bytes', () => {
    const parts = { ...decodeAddress(MAINNET.standard), publicViewKey: new Uint8Array(31) };
    expect(() => encodeAddress(parts)).toThrow(RangeError);
  });
});

describe('isPaymentIdHex', () => {
  it('accepts 16 hex digits in either case', () => {
    expect(isPaymentIdHex('0123456789abcdef')).toBe(true);
    expect(isPaymentIdHex('0123456789ABCDEF')).toBe(true);
  });

  it('rejects the wrong length, non-hex digits, prefixes and whitespace', () => {
    for (const s of ['', '0123456789abcde', '0123456789abcdef0', '0123456789abcdeg']) {
      expect(isPaymentIdHex(s)).toBe(false);
    }
    for (const s of ['0x0123456789abcd', ' 0123456789abcdef', '0123456789abcdef\n']) {
      expect(isPaymentIdHex(s)).toBe(false);
    }
    expect(isPaymentIdHex('0'.repeat(64))).toBe(false);
  });
});
