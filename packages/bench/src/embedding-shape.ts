// node packages/bench/dist/embedding-shape.js: the shape of real text embeddings, measured, beside the shape of the
// generated corpus the retrieval benchmark indexes (synthetic.ts EMBEDDING_SHAPE), so the generator's parameters are
// figures anyone can reproduce, not guesses.
// Real: the 205 passages (41 topics of 5) and 205 queries of packages/e2e/test/fixtures/retrieval-eval.json embedded
// with local-use-512 (Universal Sentence Encoder, 512 dimensions). Generated: 41 topics of 5 passages and one query
// per passage from embeddingLikeCorpus, averaged over several seeds.
// Printed: (a) the eigen-spectrum of the centred passage embeddings (share of variance in the top k ranks, the
// power-law slope of variance against rank, the participation ratio); (b) cluster structure: the mean's length,
// cosine within a topic and across topics, the nearest other passage's cosine and how often it is of the same topic;
// (c) queries: cosine to the relevant passage, to the nearest other passage, and how often the relevant one ranks first.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LocalSemanticProvider } from '@aicache/multimodal-worker/dist/providers/local-semantic.js';
import { EMBEDDING_SHAPE, embeddingLikeCorpus, type EmbeddingShape } from './synthetic.js';

interface EvalSet {
  passages: Array<{ id: string; topic: string; text: string }>;
  queries: Array<{ query: string; relevant: string[] }>;
}

export interface ShapeStats {
  top: Record<number, number>;
  slope: number;
  participationRatio: number;
  meanLength: number;
  cosWithinTopic: number;
  cosAcrossTopics: number;
  cosNearest: number;
  nearestSameTopic: number;
  cosQueryRelevant: number;
  cosQueryNearestOther: number;
  queryHitAt1: number;
}

const dot = (a: Float32Array, b: Float32Array): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};
const unit = (v: Float32Array): Float32Array => {
  const n = Math.sqrt(dot(v, v));
  return v.map((x) => x / n);
};

/** Eigenvalues of a symmetric matrix (cyclic Jacobi), largest first. */
function eigenvalues(a: Float64Array[], n: number): number[] {
  for (let sweep = 0; sweep < 50; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p]![q]! ** 2;
    if (off < 1e-18) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p]![q]!;
        if (Math.abs(apq) < 1e-15) continue;
        const theta = (a[q]![q]! - a[p]![p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k]![p]!;
          const akq = a[k]![q]!;
          a[k]![p] = c * akp - s * akq;
          a[k]![q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p]![k]!;
          const aqk = a[q]![k]!;
          a[p]![k] = c * apk - s * aqk;
          a[q]![k] = s * apk + c * aqk;
        }
      }
    }
  }
  return Array.from({ length: n }, (_, i) => a[i]![i]!).sort((x, y) => y - x);
}

/** The statistics of unit `passages` (with their topics) and `queries` (with the index of their relevant passage). */
export function shapeStats(passages: Float32Array[], topics: string[], queries: Array<{ v: Float32Array; relevant: number }>): ShapeStats {
  const n = passages.length;
  const dims = passages[0]!.length;
  const mean = new Float32Array(dims);
  for (const p of passages) for (let i = 0; i < dims; i++) mean[i]! += p[i]! / n;
  const centred = passages.map((p) => p.map((x, i) => x - mean[i]!));
  // The centred Gram matrix has the covariance's non-zero eigenvalues (n - 1 of them).
  const gram = centred.map((a) => Float64Array.from(centred, (b) => dot(a, b)));
  const ev = eigenvalues(gram, n).filter((x) => x > 1e-9);
  const total = ev.reduce((s, x) => s + x, 0);
  const top: Record<number, number> = {};
  for (const k of [1, 4, 16, 64, 128]) top[k] = ev.slice(0, k).reduce((s, x) => s + x, 0) / total;
  // Least-squares slope of log variance against log rank over ranks 2..n/2 (the tail of a small sample is biased low).
  const xs: number[] = [];
  const ys: number[] = [];
  for (let k = 2; k <= Math.floor(ev.length / 2); k++) {
    xs.push(Math.log(k));
    ys.push(Math.log(ev[k - 1]!));
  }
  const mx = xs.reduce((s, x) => s + x, 0) / xs.length;
  const my = ys.reduce((s, y) => s + y, 0) / ys.length;
  const slope = xs.reduce((s, x, i) => s + (x - mx) * (ys[i]! - my), 0) / xs.reduce((s, x) => s + (x - mx) ** 2, 0);
  const participationRatio = total ** 2 / ev.reduce((s, x) => s + x * x, 0);

  let within = 0, wn = 0, across = 0, an = 0, nearest = 0, same = 0;
  for (let i = 0; i < n; i++) {
    let best = -2, bestJ = -1;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const c = dot(passages[i]!, passages[j]!);
      if (topics[i] === topics[j]) {
        within += c;
        wn++;
      } else {
        across += c;
        an++;
      }
      if (c > best) {
        best = c;
        bestJ = j;
      }
    }
    nearest += best;
    if (topics[bestJ] === topics[i]) same++;
  }
  let rel = 0, other = 0, hit = 0;
  for (const q of queries) {
    const r = dot(q.v, passages[q.relevant]!);
    let best = -2;
    for (let j = 0; j < n; j++) if (j !== q.relevant) best = Math.max(best, dot(q.v, passages[j]!));
    rel += r;
    other += best;
    if (r > best) hit++;
  }
  return {
    top, slope, participationRatio, meanLength: Math.sqrt(dot(mean, mean)),
    cosWithinTopic: within / wn, cosAcrossTopics: across / an, cosNearest: nearest / n, nearestSameTopic: same / n,
    cosQueryRelevant: rel / queries.length, cosQueryNearestOther: other / queries.length, queryHitAt1: hit / queries.length,
  };
}

/** The statistics of local-use-512 over the labeled retrieval set (the model is loaded and closed here). */
export async function measuredStats(): Promise<ShapeStats> {
  const file = fileURLToPath(new URL('../../e2e/test/fixtures/retrieval-eval.json', import.meta.url));
  const set = JSON.parse(readFileSync(file, 'utf8')) as EvalSet;
  const model = new LocalSemanticProvider();
  try {
    const passages = (await model.embed(set.passages.map((p) => p.text))).map(unit);
    const qv = (await model.embed(set.queries.map((q) => q.query))).map(unit);
    const at = new Map(set.passages.map((p, i) => [p.id, i]));
    const queries = set.queries.map((q, i) => ({ v: qv[i]!, relevant: at.get(q.relevant[0]!)! }));
    return shapeStats(passages, set.passages.map((p) => p.topic), queries);
  } finally {
    await model.close();
  }
}

/** 41 topics of 5 chunks and a query per chunk, as the labeled set, from `seed`. */
export function generatedStats(seed: number, topics = 41, shape: EmbeddingShape = EMBEDDING_SHAPE): ShapeStats {
  const corpus = embeddingLikeCorpus(seed, shape);
  const per = shape.chunksPerTopic;
  const n = topics * per;
  const passages = Array.from({ length: n }, (_, i) => corpus.chunk(i));
  const queries = passages.map((_, i) => ({ v: corpus.queryOf(i), relevant: i }));
  return shapeStats(passages, passages.map((_, i) => String(Math.floor(i / per))), queries);
}

function average(all: ShapeStats[]): ShapeStats {
  const avg = (f: (s: ShapeStats) => number) => all.reduce((s, x) => s + f(x), 0) / all.length;
  const top: Record<number, number> = {};
  for (const k of Object.keys(all[0]!.top).map(Number)) top[k] = avg((s) => s.top[k]!);
  const out = { top } as ShapeStats;
  for (const key of Object.keys(all[0]!) as Array<keyof ShapeStats>) if (key !== 'top') (out[key] as number) = avg((s) => s[key] as number);
  return out;
}

async function main(): Promise<void> {
  const measured = await measuredStats();
  const generated = average([1, 2, 3, 4, 5].map((s) => generatedStats(s)));
  const f = (x: number) => x.toFixed(3);
  const rows: Array<[string, (s: ShapeStats) => string]> = [
    ...[1, 4, 16, 64, 128].map((k): [string, (s: ShapeStats) => string] => [`variance share, top ${k} ranks`, (s) => f(s.top[k]!)]),
    ['log variance vs log rank slope (ranks 2..n/2)', (s) => f(s.slope)],
    ['participation ratio (effective rank)', (s) => s.participationRatio.toFixed(1)],
    ['length of the mean of unit vectors', (s) => f(s.meanLength)],
    ['cosine within a topic', (s) => f(s.cosWithinTopic)],
    ['cosine across topics', (s) => f(s.cosAcrossTopics)],
    ['cosine to the nearest other passage', (s) => f(s.cosNearest)],
    ['nearest other passage of the same topic', (s) => f(s.nearestSameTopic)],
    ['query: cosine to its relevant passage', (s) => f(s.cosQueryRelevant)],
    ['query: cosine to the nearest other passage', (s) => f(s.cosQueryNearestOther)],
    ['query: relevant passage ranks first', (s) => f(s.queryHitAt1)],
  ];
  console.log('| statistic | local-use-512 on the labeled set | generated (embedding-like, mean of 5 seeds) |');
  console.log('|---|---|---|');
  for (const [name, get] of rows) console.log(`| ${name} | ${get(measured)} | ${get(generated)} |`);
  console.log(`\ngenerator: ${JSON.stringify(EMBEDDING_SHAPE)}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${String((err as Error)?.stack ?? err)}\n`);
      process.exit(1);
    },
  );
}
