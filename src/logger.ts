import pino, { type Logger } from 'pino';

/**
 * The root logger. Redaction is a second line of defence: no code logs a
 * payment id, token, key, signature or client address in the first place.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'stronghold' },
    redact: {
      paths: [
        'pid',
        'token',
        'service_token',
        'secret',
        'signature',
        'key',
        '*.pid',
        '*.token',
        '*.secret',
        '*.signature',
        'req.headers',
        'headers',
      ],
      censor: '[redacted]',
    },
    serializers: { err: pino.stdSerializers.err },
  };
  return destination ? pino(options, destination) : pino(options);
}
