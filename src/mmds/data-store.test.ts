import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MmdsStore } from './data-store';
import { MmdsLimitExceededError, MmdsNotInitializedError } from './errors';
import { type JsonValue, mergePatch, resolvePointer, toCompactJson } from './json';

describe('mergePatch (RFC 7396 appendix A cases)', () => {
  const cases: Array<[JsonValue, JsonValue, JsonValue]> = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, expected] of cases) {
    it(`${JSON.stringify(target)} + ${JSON.stringify(patch)}`, () => {
      const before = JSON.stringify(target);
      assert.deepEqual(mergePatch(target, patch), expected);
      assert.equal(JSON.stringify(target), before, 'the target is not modified');
    });
  }
});

describe('toCompactJson', () => {
  it('sorts keys at every level and writes no spaces', () => {
    assert.equal(toCompactJson({ b: 1, a: { d: [true, null], c: 'x' } }), '{"a":{"c":"x","d":[true,null]},"b":1}');
  });
  it('escapes as serde_json does for quotes, backslashes and control characters', () => {
    assert.equal(toCompactJson('a"b\\c\n\u0001é'), '"a\\"b\\\\c\\n\\u0001é"');
  });
});

describe('resolvePointer', () => {
  const doc: JsonValue = { a: [10, { 'x/y': 1, 'm~n': 2 }], '': 'empty' };
  it('follows objects, array indexes and escapes', () => {
    assert.equal(resolvePointer(doc, '/a/0'), 10);
    assert.equal(resolvePointer(doc, '/a/1/x~1y'), 1);
    assert.equal(resolvePointer(doc, '/a/1/m~0n'), 2);
    assert.equal(resolvePointer(doc, '/'), 'empty');
    assert.deepEqual(resolvePointer(doc, ''), doc);
  });
  it('refuses leading zeros, signs, out-of-range indexes and missing keys', () => {
    for (const p of ['/a/01', '/a/+1', '/a/2', '/a/-1', '/b', 'a', '/a/0/x', '/constructor', '/__proto__']) {
      assert.equal(resolvePointer(doc, p), undefined, p);
    }
  });
});

describe('MmdsStore', () => {
  it('starts uninitialised: PATCH is refused with Firecracker\'s text', () => {
    const store = new MmdsStore();
    assert.equal(store.isInitialized, false);
    assert.equal(store.value, null);
    assert.deepEqual(store.valueForApi(), {});
    assert.throws(() => store.patch({ a: 1 }), (e: unknown) => e instanceof MmdsNotInitializedError && e.message === 'The MMDS data store is not initialized.');
  });

  it('PUT replaces, PATCH merges and null deletes', () => {
    const store = new MmdsStore();
    store.put({ latest: { 'meta-data': { 'ami-id': 'ami-1', 'reservation-id': 'r-1' } } });
    store.patch({ latest: { 'meta-data': { 'ami-id': 'ami-2', 'reservation-id': null } } });
    assert.deepEqual(store.value, { latest: { 'meta-data': { 'ami-id': 'ami-2' } } });
    store.put({ other: 'x' });
    assert.deepEqual(store.value, { other: 'x' });
    assert.deepEqual(store.valueForApi(), { other: 'x' });
    store.clear();
    assert.deepEqual([store.isInitialized, store.value], [false, null]);
  });

  it('enforces the size limit on the compact serialisation and leaves the store unchanged', () => {
    // the shape of Firecracker's limit scenario: exactly 51200 bytes fits, one more byte does not
    const store = new MmdsStore({ sizeLimit: 51200 });
    assert.equal(store.sizeLimit, 51200);
    store.put({});
    const fits = { latest: { 'meta-data': { 'ami-id': 'smth', secret_key: 'a'.repeat(51142) } } };
    assert.equal(toCompactJson(fits).length, 51200);
    store.patch(fits);
    assert.throws(() => store.patch({ latest: { 'meta-data': { more: 'b' } } }), (e: unknown) => e instanceof MmdsLimitExceededError && e.message === "The MMDS patch request doesn't fit." && e.code === 'EMMDS_LIMIT');
    assert.deepEqual(store.value, fits);
    assert.throws(() => store.put({ big: 'c'.repeat(51200) }), MmdsLimitExceededError);
    assert.deepEqual(store.value, fits);
    store.patch({ latest: null });
    store.patch({ s: 'd'.repeat(100) });
    assert.deepEqual(store.value, { s: 'd'.repeat(100) });
  });

  it('counts UTF-8 bytes, not characters', () => {
    const store = new MmdsStore({ sizeLimit: 9 });
    store.put('ééé'); // 3 characters, 6 bytes, plus the quotes: 8
    store.put('abcdefg'); // 9
    assert.throws(() => store.put('éééé'), MmdsLimitExceededError); // 6 characters with quotes, but 10 bytes
  });

  describe('lookup', () => {
    const store = new MmdsStore();
    store.put({
      latest: {
        'meta-data': {
          'reservation-id': 'r-1', 'ami-id': 'ami-1', dummy_obj: { k: 'v' }, dummy_array: ['arr_val1', 'arr_val2'],
          dummy_empty: '', num: 512, float: 12.12, flag: true, nothing: null,
        },
      },
    });

    it('IMDS: an object is its sorted keys, sub-objects with a slash, arrays without', () => {
      assert.deepEqual(store.lookup('/latest/meta-data', 'imds'), {
        kind: 'ok', body: 'ami-id\ndummy_array\ndummy_empty\ndummy_obj/\nflag\nfloat\nnothing\nnum\nreservation-id',
      });
      assert.deepEqual(store.lookup('/latest/meta-data/', 'imds'), store.lookup('/latest/meta-data', 'imds'));
      assert.deepEqual(store.lookup('/', 'imds'), { kind: 'ok', body: 'latest/' });
    });

    it('IMDS: strings as-is (a trailing slash allowed), array elements by index, the empty string empty', () => {
      assert.deepEqual(store.lookup('/latest/meta-data/ami-id', 'imds'), { kind: 'ok', body: 'ami-1' });
      assert.deepEqual(store.lookup('/latest/meta-data/ami-id/', 'imds'), { kind: 'ok', body: 'ami-1' });
      assert.deepEqual(store.lookup('/latest/meta-data/dummy_array/0', 'imds'), { kind: 'ok', body: 'arr_val1' });
      assert.deepEqual(store.lookup('/latest/meta-data/dummy_empty', 'imds'), { kind: 'ok', body: '' });
    });

    it('IMDS: numbers, booleans, null and arrays are an unsupported type', () => {
      for (const p of ['num', 'float', 'flag', 'nothing', 'dummy_array']) {
        assert.deepEqual(store.lookup(`/latest/meta-data/${p}`, 'imds'), { kind: 'unsupported-type' }, p);
      }
    });

    it('JSON: compact, sorted, numbers as numbers and strings quoted', () => {
      assert.deepEqual(store.lookup('/latest/meta-data/dummy_obj', 'json'), { kind: 'ok', body: '{"k":"v"}' });
      assert.deepEqual(store.lookup('/latest/meta-data/num', 'json'), { kind: 'ok', body: '512' });
      assert.deepEqual(store.lookup('/latest/meta-data/float', 'json'), { kind: 'ok', body: '12.12' });
      assert.deepEqual(store.lookup('/latest/meta-data/ami-id', 'json'), { kind: 'ok', body: '"ami-1"' });
    });

    it('missing paths are not found', () => {
      assert.deepEqual(store.lookup('/latest/nope', 'imds'), { kind: 'not-found' });
      assert.deepEqual(store.lookup('/latest/meta-data/ami-id/x', 'json'), { kind: 'not-found' });
    });

    it('an uninitialised store holds null: JSON "null", IMDS unsupported', () => {
      const empty = new MmdsStore();
      assert.deepEqual(empty.lookup('/', 'json'), { kind: 'ok', body: 'null' });
      assert.deepEqual(empty.lookup('/', 'imds'), { kind: 'unsupported-type' });
      assert.deepEqual(empty.lookup('/a', 'imds'), { kind: 'not-found' });
    });
  });
});
