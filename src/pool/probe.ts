/** Whether a VMM's API answers: GET / over its Unix socket returns 200 (Firecracker's InstanceInfo). */
import * as http from 'node:http';

export function apiAnswers(socketPath: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath, path: '/', method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}
