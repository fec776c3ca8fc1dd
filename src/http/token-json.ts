import type { TokenStatus } from '../tickets/ticket-service.js';

/** The JSON form of a token's status, shared by introspection and revocation. */
export function tokenStatusJson(status: TokenStatus) {
  return {
    status: status.status,
    balance_atomic: status.balance.toString(),
    issued_at: status.issuedAt,
    revoked_at: status.revokedAt,
    abuse_score: status.abuseScore,
  };
}
