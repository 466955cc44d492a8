/** The narrow logging interface the engine uses; Powertools or the console implement it. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
type Level = (typeof LEVELS)[number];

/** One JSON line per entry on stderr (what CloudWatch and local tools read alike). */
export function jsonLogger(
  minLevel: Level = 'info',
  write: (line: string) => void = (l) => void process.stderr.write(`${l}\n`),
): Logger {
  const min = LEVELS.indexOf(minLevel);
  const log = (level: Level) => (message: string, fields?: Record<string, unknown>) => {
    if (LEVELS.indexOf(level) >= min)
      write(JSON.stringify({ level, time: new Date().toISOString(), message, ...fields }));
  };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
