import { describe, expect, it } from 'vitest';
import { Value } from 'typebox/value';
import { ContextRequest, ContextResponse, EmbeddingsRequest, EmbeddingsResponse, Filters, QUERY_MAX_LENGTH, SearchRequest, type Citation } from '../src/index.js';

describe('Filters', () => {
  it.each([
    ['a scalar, an any-of array and the document fields', { lang: 'en', year: [2023, 2024], public: true, documentId: 'd', source: 's' }],
    ['a 64-character key with dots, dashes and underscores', { ['a.b-c_'.padEnd(64, 'x')]: 1 }],
  ])('accepts %s', (_name, filters) => {
    expect(Value.Check(Filters, filters)).toBe(true);
  });

  it.each([
    ['a key with ":"', { 'a:b': 'x' }],
    ['a 65-character key', { ['k'.repeat(65)]: 'x' }],
    ['a 100-character key', { ['k'.repeat(100)]: 'x' }],
    ['an empty array', { lang: [] }],
    ['51 values', { lang: Array.from({ length: 51 }, (_, i) => i) }],
    ['21 keys', Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, i]))],
    ['null', { lang: null }],
    ['a nested object', { lang: { en: true } }],
  ])('refuses %s', (_name, filters) => {
    expect(Value.Check(Filters, filters)).toBe(false);
  });
});

describe('requests', () => {
  it('caps the query at QUERY_MAX_LENGTH characters', () => {
    expect(Value.Check(SearchRequest, { query: 'q'.repeat(QUERY_MAX_LENGTH) })).toBe(true);
    expect(Value.Check(SearchRequest, { query: 'q'.repeat(QUERY_MAX_LENGTH + 1) })).toBe(false);
    expect(Value.Check(ContextRequest, { query: '' })).toBe(false);
    expect(Value.Check(ContextRequest, { query: 'q', format: 'md' })).toBe(false);
  });
});

describe('ContextResponse', () => {
  it('carries each section with its own citation', () => {
    const citation: Citation = { id: 1, documentId: 'd', title: 't', chunkIndex: 0 };
    expect(Value.Check(ContextResponse, { query: 'q', sections: [{ citation, text: 'x', score: 0.5 }], text: '[1] x', truncated: false })).toBe(true);
    expect(Value.Check(ContextResponse, { query: 'q', sections: [{ citation: { ...citation, id: 0 }, text: 'x', score: 0.5 }], text: '', truncated: false })).toBe(false);
    expect(Value.Check(ContextResponse, { query: 'q', sections: [{ documentId: 'd', text: 'x', score: 0.5 }], text: '', truncated: false })).toBe(false);
  });
});

describe('Embeddings', () => {
  it('takes one text or a non-empty list of non-empty texts, and nothing the worker would not declare', () => {
    expect(Value.Check(EmbeddingsRequest, { input: 'a' })).toBe(true);
    expect(Value.Check(EmbeddingsRequest, { input: ['a', 'b'], encoding_format: 'base64', model: 'm' })).toBe(true);
    expect(Value.Check(EmbeddingsRequest, { input: [] })).toBe(false);
    expect(Value.Check(EmbeddingsRequest, { input: [''] })).toBe(false);
    expect(Value.Check(EmbeddingsRequest, { input: 'a', encoding_format: 'hex' })).toBe(false);
    expect(Value.Check(EmbeddingsRequest, { input: 'a', extra: 1 })).toBe(false);
  });

  it('answers vectors as numbers or base64 under the index of their input, with the model', () => {
    expect(Value.Check(EmbeddingsResponse, { data: [{ index: 0, embedding: [0.5] }, { index: 1, embedding: 'AAAAPw==' }], model: 'm', object: 'list' })).toBe(true);
    expect(Value.Check(EmbeddingsResponse, { data: [{ index: 0, embedding: [0.5] }] })).toBe(false);
    expect(Value.Check(EmbeddingsResponse, { data: [{ index: -1, embedding: [0.5] }], model: 'm' })).toBe(false);
    expect(Value.Check(EmbeddingsResponse, { data: [{ embedding: [0.5] }], model: 'm' })).toBe(false);
  });
});
