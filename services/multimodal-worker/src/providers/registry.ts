import { UnknownModel } from '../errors.js';
import type { EmbeddingProvider } from './types.js';

/** The models this worker serves, by id, and which one answers when a request names none. */
export class ModelRegistry {
  private readonly byId = new Map<string, EmbeddingProvider>();
  readonly defaultModel: string;

  constructor(providers: EmbeddingProvider[], defaultModel?: string) {
    if (providers.length === 0) throw new Error('ModelRegistry needs at least one provider');
    for (const p of providers) {
      if (this.byId.has(p.id)) throw new Error(`two embedding providers share the model id '${p.id}'`);
      this.byId.set(p.id, p);
    }
    this.defaultModel = defaultModel ?? providers[0]!.id;
    if (!this.byId.has(this.defaultModel)) throw new Error(`default model '${this.defaultModel}' is not among the providers`);
  }

  /** The provider for `model` (default when omitted); 400 UNKNOWN_MODEL otherwise. */
  resolve(model?: string): EmbeddingProvider {
    const id = model ?? this.defaultModel;
    const p = this.byId.get(id);
    if (!p) throw new UnknownModel(id.slice(0, 200), this.ids().join(', '));
    return p;
  }

  find(id: string): EmbeddingProvider | undefined {
    return this.byId.get(id);
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }

  all(): EmbeddingProvider[] {
    return [...this.byId.values()];
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((p) => p.close?.()));
  }
}
