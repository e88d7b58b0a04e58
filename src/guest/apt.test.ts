import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAptPolicy } from './apt';

const POLICY = `linux-image-cloud-amd64:
  Installed: (none)
  Candidate: 6.1.192-3
  Version table:
     6.1.192-3 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
     6.1.176-1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
busybox-static:
  Installed: 1:1.35.0-4+deb12u1+b1
  Candidate: 1:1.35.0-4+deb12u1+b1
  Version table:
 *** 1:1.35.0-4+deb12u1+b1 500
        100 /var/lib/dpkg/status
iperf3:amd64:
  Installed: (none)
  Candidate: 3.12-1+deb12u2
gone-package:
  Installed: (none)
  Candidate: (none)
`;

test('parseAptPolicy reads the candidate of each package and leaves out those without one', () => {
  assert.deepEqual(parseAptPolicy(POLICY), {
    'linux-image-cloud-amd64': '6.1.192-3',
    'busybox-static': '1:1.35.0-4+deb12u1+b1',
    iperf3: '3.12-1+deb12u2',
  });
  assert.deepEqual(parseAptPolicy(''), {});
});
