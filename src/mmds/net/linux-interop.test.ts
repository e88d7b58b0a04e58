/**
 * The MMDS stack against a real TCP/IP stack: curl in a network namespace reaches MMDS through
 * a TAP device whose frames this test hands to MmdsNetworkStack, as the net device will.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMmds } from '../mmds';
import { linuxPeerUnavailable, runLinuxPeer } from '../testing/linux-peer';

const unavailable = linuxPeerUnavailable();

describe('MMDS with the Linux kernel as the guest', { skip: unavailable }, () => {
  for (const offloads of [false, true]) {
    const what = offloads ? 'with checksum and TSO offloads (partial checksums)' : 'with full checksums';
    it(`curl ${what}: ARP, V2 tokens, 401s, a value of several MSS, JSON, a lying Content-Length`, async () => {
      await exchange(offloads);
    });
  }

  it('a lossy link (a tenth of the frames lost each way): parallel fetches of 20 KB all complete', async () => {
    const mmds = createMmds({});
    const value = '0123456789'.repeat(2000);
    mmds.store.put({ value });
    const stack = mmds.createNetworkStack();
    let seed = 7;
    const lose = (): boolean => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % 10 === 0;
    };
    let toKernel: ((frame: Uint8Array) => void) | undefined;
    const flush = (): void => {
      while (toKernel && stack.hasPending()) {
        const out = new Uint8Array(1514);
        const n = stack.writeNextFrame(out);
        if (n === 0) break;
        if (!lose()) toKernel(out.subarray(0, n));
      }
    };
    const timer = setInterval(flush, 20);
    try {
      const fetch = 'curl -s -m 15 -o /dev/null -w "%{http_code} %{size_download}\\n" http://169.254.169.254/value';
      const results = await runLinuxPeer([`for _ in 1 2 3 4 5 6; do ${fetch} & done; wait`], '169.254.169.254', true, ({ frame, checksumPartial }, inject) => {
        toKernel = inject;
        if (lose()) return;
        stack.detour(frame, { checksumPartial });
        flush();
      });
      assert.deepEqual(results[0].stdout.trim().split('\n'), Array(6).fill('200 20000'));
      assert.equal(mmds.metrics.connections_created, 6);
    } finally {
      clearInterval(timer);
    }
  });
});

async function exchange(offloads: boolean): Promise<void> {
  const mmds = createMmds({ options: { version: 'V2' } });
  const big = Array.from({ length: 6000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
  mmds.store.put({ latest: { 'meta-data': { 'ami-id': 'ami-12345678', big, nested: { k: 'v' } } } });
  const stack = mmds.createNetworkStack();
  const curl = 'curl -s -m 5 -w "|%{http_code}"';
  const token = `T=$(curl -s -m 5 -X PUT http://169.254.169.254/latest/api/token -H "X-metadata-token-ttl-seconds: 60")`;
  const commands = [
    `${curl} http://169.254.169.254/latest/meta-data/`,
    `${curl} -H "X-metadata-token: forged" http://169.254.169.254/latest/meta-data/`,
    `${token}; ${curl} -H "X-metadata-token: $T" http://169.254.169.254/latest/meta-data/`,
    `${token}; ${curl} -H "X-aws-ec2-metadata-token: $T" http://169.254.169.254/latest/meta-data/big`,
    `${token}; ${curl} -H "X-metadata-token: $T" -H "Accept: application/json" http://169.254.169.254/latest/meta-data/nested`,
    `${token}; ${curl} -X GET -H "X-metadata-token: $T" -H "Content-Length: 100" --data-binary 123456789 http://169.254.169.254/latest`,
    `${curl} -X PUT -H "X-metadata-token-ttl-seconds: 21601" http://169.254.169.254/latest/api/token`,
  ];
  // frames for the kernel go out as soon as MMDS has them, and on a timer for retransmissions
  let toKernel: ((frame: Uint8Array) => void) | undefined;
  const flush = (): void => {
    while (toKernel && stack.hasPending()) {
      const out = new Uint8Array(1514);
      const n = stack.writeNextFrame(out);
      if (n === 0) break;
      toKernel(out.subarray(0, n));
    }
  };
  const timer = setInterval(flush, 20);
  try {
    let partial = 0;
    const results = await runLinuxPeer(commands, '169.254.169.254', offloads, ({ frame, checksumPartial }, inject) => {
      toKernel = inject;
      if (checksumPartial) partial++;
      stack.detour(frame, { checksumPartial });
      flush();
    });
    const outputs = results.map((r) => r.stdout);
    assert.equal(outputs[0], 'No MMDS token provided. Use `X-metadata-token` or `X-aws-ec2-metadata-token` header to specify the session token.|401');
    assert.equal(outputs[1], 'MMDS token not valid.|401');
    assert.equal(outputs[2], 'ami-id\nbig\nnested/|200');
    assert.equal(outputs[3], `${big}|200`);
    assert.equal(outputs[4], '{"k":"v"}|200');
    assert.equal(outputs[5], 'Invalid request.|400');
    assert.equal(outputs[6], 'Invalid time to live value provided for token: 21601. Please provide a value between 1 and 21600.|400');
    assert.ok(mmds.metrics.connections_created >= commands.length);
    assert.equal(mmds.metrics.rx_accepted_err, 0);
    if (offloads) assert.ok(partial > 0, 'the kernel did offload checksums, so that path was exercised');
  } finally {
    clearInterval(timer);
  }
}
