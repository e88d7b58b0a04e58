/**
 * `sparkler exec --api-sock S [--port N] -- CMD ARGS...`: runs a command in a running VM through
 * its guest agent and exits with the command's exit code. The vsock socket is found with
 * GET /vm/config; output is streamed, stdin is passed through when it is not a terminal.
 */
import { parseArgs } from 'node:util';
import { AGENT_PORT, AgentClient, dialVsock } from '../sdk/agent-client';
import { FirecrackerClient } from '../sdk/firecracker-client';

const USAGE = 'usage: sparkler exec --api-sock PATH [--port N] [--cwd DIR] -- CMD [ARGS...]';

export async function run(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const { values } = parseArgs({
    args: dash < 0 ? argv : argv.slice(0, dash),
    options: { 'api-sock': { type: 'string' }, port: { type: 'string' }, cwd: { type: 'string' }, help: { type: 'boolean' } },
  });
  const command = dash < 0 ? [] : argv.slice(dash + 1);
  if (values.help) { process.stdout.write(`${USAGE}\n`); return 0; }
  if (values['api-sock'] === undefined || command.length === 0) { process.stderr.write(`${USAGE}\n`); return 2; }
  const port = values.port === undefined ? AGENT_PORT : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 0xffff_ffff) { process.stderr.write(`sparkler exec: --port ${values.port} is not a vsock port.\n`); return 2; }
  const config = await new FirecrackerClient(values['api-sock']).getVmConfig();
  const uds = config.vsock?.uds_path;
  if (!uds) { process.stderr.write('sparkler exec: the VM has no vsock device (PUT /vsock before starting it).\n'); return 1; }
  const stdin = process.stdin.isTTY ? undefined : await readAll(process.stdin);
  const r = await new AgentClient(() => dialVsock(uds, port)).exec(command, {
    cwd: values.cwd, stdin,
    onStdout: (c) => process.stdout.write(c),
    onStderr: (c) => process.stderr.write(c),
  });
  return r.exitCode;
}

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(Buffer.from(c as Buffer));
  return Buffer.concat(parts);
}
