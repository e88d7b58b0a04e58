import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../ratelimit/fake-clock';
import { MmdsTokenTtlError } from './errors';
import { MAX_TOKEN_TTL_SECONDS, TokenAuthority } from './token-authority';

describe('TokenAuthority', () => {
  it('accepts TTLs 1..21600 and refuses others with Firecracker\'s text', () => {
    const tokens = new TokenAuthority({ clock: new FakeClock() });
    assert.equal(typeof tokens.generate(1), 'string');
    assert.equal(typeof tokens.generate(MAX_TOKEN_TTL_SECONDS), 'string');
    for (const ttl of [0, 21601, -1, 1.5]) {
      assert.throws(() => tokens.generate(ttl), (e: unknown) => e instanceof MmdsTokenTtlError
        && e.message === `Invalid time to live value provided for token: ${ttl}. Please provide a value between 1 and 21600.`);
    }
  });

  it('a token is 48 base64 characters, different every time', () => {
    const tokens = new TokenAuthority({ clock: new FakeClock() });
    const a = tokens.generate(60);
    const b = tokens.generate(60);
    assert.match(a, /^[A-Za-z0-9+/]{48}$/);
    assert.notEqual(a, b);
  });

  it('is valid until its TTL has passed on the clock, then not', () => {
    const clock = new FakeClock(5_000);
    const tokens = new TokenAuthority({ clock });
    const token = tokens.generate(2);
    assert.equal(tokens.isValid(token), true);
    clock.advance(1_999);
    assert.equal(tokens.isValid(token), true);
    clock.advance(1);
    assert.equal(tokens.isValid(token), false);
  });

  it('refuses tampered, truncated, foreign and junk tokens', () => {
    const clock = new FakeClock();
    const tokens = new TokenAuthority({ clock });
    const token = tokens.generate(600);
    const bytes = Buffer.from(token, 'base64');
    for (let i = 0; i < bytes.length; i++) {
      const tampered = Buffer.from(bytes);
      tampered[i] ^= 0x01;
      assert.equal(tokens.isValid(tampered.toString('base64')), false, `byte ${i} flipped`);
    }
    assert.equal(tokens.isValid(token.slice(0, -4)), false);
    assert.equal(tokens.isValid(''), false);
    assert.equal(tokens.isValid('x'.repeat(10_000)), false);
    assert.equal(tokens.isValid('!!not base64!!'), false);
    assert.equal(new TokenAuthority({ clock }).isValid(token), false, 'another authority (a restored VM) has another key');
  });

  it('binds tokens to the instance id', () => {
    const tokens = new TokenAuthority({ clock: new FakeClock() });
    tokens.setInstanceId('vm-a');
    const token = tokens.generate(60);
    assert.equal(tokens.isValid(token), true);
    tokens.setInstanceId('vm-b');
    assert.equal(tokens.isValid(token), false);
  });
});
