/**
 * Device registry CLI: `npm run devices -- <command>` (NATS_URL selects the server, default nats://127.0.0.1:4222).
 *
 * `npm run devices -- --help` lists the commands (commander):
 *
 *   add <id> [--role device|monitor]   create a device (or rotate its secret) and print the secret once
 *   list [--json]                      credentials and status of every device
 *   revoke <id>                        refuse the device from now on and close its connection
 *
 * The secret is printed once and stored only as an scrypt hash; a lost secret is replaced with `add` again.
 */
import { pathToFileURL } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { connect } from 'nats';
import { quietOnClosedStdout } from '../core/cli.ts';
import { DeviceRole, getDeviceRecord, listCredentials, openRegistryBuckets, provisionDevice, revokeDevice } from '../core/device-registry.ts';
import { DeviceId } from '../core/schemas.ts';

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

function deviceId(text: string): string {
  const parsed = DeviceId.safeParse(text);
  if (!parsed.success) throw new InvalidArgumentError(`device id ${JSON.stringify(text)}: must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`);
  return parsed.data;
}

/**
 * Runs one CLI command (commander); returns the process exit code: 0 done (and for --help), 1 failed, 2 usage
 * error. Owns its NATS connection and closes it.
 */
export async function runDevicesCli(argv: string[], natsUrl: string, io: CliIo): Promise<number> {
  let code = 0;
  const withRegistry = async <T>(fn: (buckets: Awaited<ReturnType<typeof openRegistryBuckets>>) => Promise<T>): Promise<T> => {
    const nc = await connect({ servers: natsUrl.split(','), name: 'devices-cli' });
    try {
      return await fn(await openRegistryBuckets(nc.jetstream()));
    } finally {
      await nc.close();
    }
  };
  const program = new Command('devices')
    .description('The device registry (NATS KV): add devices, list them, revoke them.')
    .helpOption('-h, --help', 'show this help and exit')
    .addHelpText('after', '\nEnvironment: NATS_URL (default nats://127.0.0.1:4222). The secret is printed once and stored only as an scrypt hash.\n')
    .exitOverride()
    .configureOutput({ writeOut: (t) => io.out(t.trimEnd()), writeErr: (t) => io.err(t.trimEnd()) });
  program
    .command('add')
    .description('create a device (or rotate its secret); prints the secret once')
    .argument('<id>', 'device id (also its MQTT client id and username)', deviceId)
    .addOption(new Option('--role <role>', 'device, or monitor (may read devices/+/status)').choices(DeviceRole.options).default('device'))
    .action(async (id: string, flags: { role: DeviceRole }) => {
      const { secret } = await withRegistry((b) => provisionDevice(b.credentials, id, { role: flags.role }));
      io.out(
        `device:   ${id}\nrole:     ${flags.role}\nusername: ${id}\nclient id: ${id}\nsecret:   ${secret}\n(the secret is shown once; store it on the device)`,
      );
    });
  program
    .command('list')
    .description('list devices: role, created, revoked, online, last seen')
    .option('--json', 'one JSON array')
    .action(async (flags: { json?: boolean }) => {
      const rows = await withRegistry(async (b) => {
        const out = [];
        for (const c of await listCredentials(b.credentials)) {
          const r = await getDeviceRecord(b.registry, c.deviceId);
          out.push({ deviceId: c.deviceId, role: c.role, createdAt: c.createdAt, revokedAt: c.revokedAt, online: r?.online ?? false, lastSeen: r?.lastSeen });
        }
        return out;
      });
      if (flags.json) {
        io.out(JSON.stringify(rows));
        return;
      }
      const iso = (t: number | undefined): string => (t === undefined ? '-' : new Date(t).toISOString());
      io.out(['DEVICE', 'ROLE', 'CREATED', 'REVOKED', 'ONLINE', 'LAST SEEN'].join('\t'));
      for (const r of rows) io.out([r.deviceId, r.role, iso(r.createdAt), iso(r.revokedAt), r.online ? 'yes' : 'no', iso(r.lastSeen)].join('\t'));
    });
  program
    .command('revoke')
    .description('refuse the device from now on (its open connection is closed)')
    .argument('<id>', 'device id', deviceId)
    .action(async (id: string) => {
      if (!(await withRegistry((b) => revokeDevice(b.credentials, id)))) {
        io.err(`no device ${id}`);
        code = 1;
        return;
      }
      io.out(`revoked ${id}`);
    });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2; // --help and version: 0; usage errors: 2
    throw err;
  }
}

// Entry point (npm run devices): the only place here that reads process.env and sets the exit code.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // eslint-disable-next-line no-restricted-syntax -- the CLI's own entry point, as a main.ts would
  quietOnClosedStdout(process.stdout, (code) => process.exit(code));
  runDevicesCli(process.argv.slice(2), process.env.NATS_URL ?? 'nats://127.0.0.1:4222', {
    out: (l) => process.stdout.write(`${l}\n`),
    err: (l) => process.stderr.write(`${l}\n`),
  }).then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      process.stderr.write(`devices: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
