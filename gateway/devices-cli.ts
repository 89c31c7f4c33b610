/**
 * Device registry CLI: `npm run devices -- <command>` (NATS_URL selects the server, default nats://127.0.0.1:4222).
 *
 *   add <id> [--role device|monitor]   create a device (or rotate its secret) and print the secret once
 *   list [--json]                      credentials and status of every device
 *   revoke <id>                        refuse the device from now on and close its connection
 *
 * The secret is printed once and stored only as an scrypt hash; a lost secret is replaced with `add` again.
 */
import { pathToFileURL } from 'node:url';
import { connect } from 'nats';
import { DeviceRole, getDeviceRecord, listCredentials, openRegistryBuckets, provisionDevice, revokeDevice } from '../core/device-registry.ts';
import { DeviceId } from '../core/schemas.ts';

const USAGE = `usage: npm run devices -- <command>
  add <id> [--role device|monitor]   create a device (or rotate its secret); prints the secret once
  list [--json]                      list devices: role, created, revoked, online, last seen
  revoke <id>                        refuse the device from now on (its open connection is closed)
environment: NATS_URL (default nats://127.0.0.1:4222)`;

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** Runs one CLI command; returns the process exit code. Owns its NATS connection and closes it. */
export async function runDevicesCli(argv: string[], natsUrl: string, io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  const flag = (name: string): string | undefined => {
    const i = rest.indexOf(name);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  const positional = rest.filter((a, i) => !a.startsWith('--') && !rest[i - 1]?.startsWith('--'));
  if (command === undefined || command === 'help' || command === '--help') {
    io.out(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (!['add', 'list', 'revoke'].includes(command)) {
    io.err(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
    return 2;
  }
  let id: string | undefined;
  if (command !== 'list') {
    const parsed = DeviceId.safeParse(positional[0]);
    if (!parsed.success) {
      io.err(`device id ${JSON.stringify(positional[0] ?? '')}: must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`);
      return 2;
    }
    id = parsed.data;
  }
  const role = DeviceRole.safeParse(flag('--role') ?? 'device');
  if (!role.success) {
    io.err(`--role: must be device or monitor`);
    return 2;
  }

  const nc = await connect({ servers: natsUrl.split(','), name: 'devices-cli' });
  try {
    const buckets = await openRegistryBuckets(nc.jetstream());
    if (command === 'add' && id) {
      const { secret } = await provisionDevice(buckets.credentials, id, { role: role.data });
      io.out(
        `device:   ${id}\nrole:     ${role.data}\nusername: ${id}\nclient id: ${id}\nsecret:   ${secret}\n(the secret is shown once; store it on the device)`,
      );
      return 0;
    }
    if (command === 'revoke' && id) {
      if (!(await revokeDevice(buckets.credentials, id))) {
        io.err(`no device ${id}`);
        return 1;
      }
      io.out(`revoked ${id}`);
      return 0;
    }
    const creds = await listCredentials(buckets.credentials);
    const rows = [];
    for (const c of creds) {
      const r = await getDeviceRecord(buckets.registry, c.deviceId);
      rows.push({ deviceId: c.deviceId, role: c.role, createdAt: c.createdAt, revokedAt: c.revokedAt, online: r?.online ?? false, lastSeen: r?.lastSeen });
    }
    if (rest.includes('--json')) {
      io.out(JSON.stringify(rows));
      return 0;
    }
    const iso = (t: number | undefined): string => (t === undefined ? '-' : new Date(t).toISOString());
    io.out(['DEVICE', 'ROLE', 'CREATED', 'REVOKED', 'ONLINE', 'LAST SEEN'].join('\t'));
    for (const r of rows) io.out([r.deviceId, r.role, iso(r.createdAt), iso(r.revokedAt), r.online ? 'yes' : 'no', iso(r.lastSeen)].join('\t'));
    return 0;
  } finally {
    await nc.close();
  }
}

// Entry point (npm run devices): the only place here that reads process.env and sets the exit code.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
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
