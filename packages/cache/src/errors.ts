/** Base of every error the cache library throws on purpose; `code` is stable for callers and HTTP layers. */
export class CacheError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A bad setting (env variable, option): thrown at construction so a service refuses to boot. */
export class CacheConfigError extends CacheError {
  /** The variable or option that was wrong, e.g. CACHE_TTL_EMBEDDINGS. */
  readonly variable: string;
  constructor(variable: string, message: string) {
    super('CACHE_CONFIG_ERROR', message);
    this.variable = variable;
  }
}

export class UnknownCategoryError extends CacheError {
  readonly category: string;
  constructor(category: string, known: string[]) {
    super('CACHE_UNKNOWN_CATEGORY', `Unknown cache category "${category}"; known: ${known.join(', ') || '(none)'}`);
    this.category = category;
  }
}

export class InvalidPatternError extends CacheError {
  constructor(message: string) {
    super('CACHE_INVALID_PATTERN', message);
  }
}

/** Internal: a Redis call that did not answer in time. Never escapes the library. */
export class CacheTimeoutError extends CacheError {
  constructor(ms: number) {
    super('CACHE_TIMEOUT', `Redis did not answer within ${ms} ms`);
  }
}

/** Internal: the circuit is open, the call was not sent. Never escapes the library. */
export class CircuitOpenError extends CacheError {
  constructor() {
    super('CACHE_CIRCUIT_OPEN', 'Cache circuit is open; Redis calls are skipped until it recovers');
  }
}
