// Every command of `mirror`, declared once: summary, description, positionals and options. Help
// and validation come from here; each implementation is imported only when its command runs.
import { statSync } from 'node:fs';
import { REGISTRY_NAME } from '../../generator/model/registry.ts';
import {
  Invalid,
  UsageError,
  duration,
  hostPort,
  httpUrl,
  integer,
  jsonObject,
  keyValue,
  listenOptions,
  oneOf,
  positiveInteger,
  releasesOption,
  type GroupSpec,
} from './command.ts';

const site = () => import('./site-commands.ts');
const release = () => import('./release-commands.ts');
const deploy = () => import('./deploy-commands.ts');
const registry = () => import('./registry-commands.ts');
const fleet = () => import('./fleet-commands.ts');
const trust = () => import('./trust-commands.ts');

/** The fleet's operator scope, as sidecar/fleet/auth.ts names it (test/cli.test.ts checks they agree). */
export const OPERATOR_SCOPE_NAME = 'fleet:admin';

const fleetApiOptions = {
  url: { value: 'URL', help: 'the fleet listener (default https://127.0.0.1:$FLEET_PORT, trusting the fleet CA)', parse: httpUrl },
  token: { value: 'TOKEN', help: `an operator token with the ${OPERATOR_SCOPE_NAME} scope (default $MIRROR_FLEET_TOKEN; with AUTH_MODE=local, one is minted for the call)` },
};

export const COMMANDS: GroupSpec = {
  summary: 'build and serve a release distribution site',
  description: `Run \`mirror COMMAND --help\` for a command's options. A mistake in the command line exits with
status 2, a failure with status 1.
Environment: MIRROR_RELEASES (manifest store, default releases/), MIRROR_DATA_DIR (blobs, built
site and state, default .mirror/), PORT (default 8080), HOST (default 127.0.0.1); the sidecar's
settings (DATABASE_URL, REDIS_URL, AUTH_MODE, ...) are listed in the README and printed by
\`mirror serve\` at start.`,
  commands: {
    build: {
      summary: 'validates the manifest store and renders the site into a local directory',
      description: `Only files that changed are written; the new build replaces the old one atomically.`,
      options: {
        ...releasesOption,
        out: { value: 'DIR', help: 'site path, a symlink to the current build (default $MIRROR_DATA_DIR/site)' },
      },
      load: async () => (await site()).build,
    },
    serve: {
      summary: 'serves a built site with the sidecar\'s API and the fleet listener',
      description: `Serves a built site with the route table (JSON and HTML indexes, artifacts from the blob store,
redirects, conditional and range requests) and the sidecar's API: uploads, JSON download
envelopes, the agent registry at /api/v1, /healthz, /readyz, /metrics; and the deployment-agent
fleet's HTTPS listener (FLEET_PORT, default 8443). Settings come from the environment (see the
README); they are printed at start with secrets hidden.`,
      options: {
        site: { value: 'DIR', help: 'site path written by `mirror build` (default $MIRROR_DATA_DIR/site)' },
        ...listenOptions,
      },
      load: async () => (await site()).serve,
    },
    start: {
      summary: 'builds the manifest store and serves it (what `npm start` runs)',
      description: `Builds the manifest store (the bundled sample by default) and serves it with the sidecar's API.
The embedded SQLite state database is migrated at start. A --releases folder that does not exist
yet starts as a copy of the bundled sample store (its artifacts copied into the data directory's
blobs), so uploads and \`mirror release add\` leave the checkout's releases/ as it is.`,
      options: { ...releasesOption, ...listenOptions },
      load: async () => (await site()).start,
    },
    migrate: {
      summary: 'applies the state database\'s pending migrations',
      description: `PostgreSQL when DATABASE_URL is set, otherwise the SQLite file $MIRROR_DATA_DIR/state.db. Safe
to run from several processes at once.`,
      options: {},
      load: async () => (await site()).migrate,
    },
    token: {
      summary: 'upload API tokens from the local issuer',
      commands: {
        create: {
          summary: 'prints a Bearer token for the upload API',
          description: `Signed by the sidecar's local issuer (AUTH_MODE=local; the key is kept in
$MIRROR_DATA_DIR/auth/). With AUTH_MODE=cognito, tokens come from Cognito.`,
          options: {
            sub: { value: 'NAME', help: 'who the token stands for (logged with each upload)', required: true },
            ttl: { value: 'DURATION', help: 'lifetime: 90s, 30m, 1h, 7d', default: '1h', parse: duration },
            scope: { value: 'S', help: 'a scope to grant', multiple: true },
          },
          load: async () => (await site()).tokenCreate,
        },
      },
    },
    release: {
      summary: 'adds releases to the manifest store',
      commands: {
        add: {
          summary: 'hashes files into the blob store and writes releases/<product>/<version>.json',
          description: `Adding files to an existing release is allowed; replacing an artifact is refused.
A file's platform and architecture come from its name (tool_1.2.3_linux_amd64.zip) or are
given as FILE#PLATFORM/ARCH (ScalepadAgent-1.8.3.pkg#darwin/arm64).`,
          positionals: [{ name: 'FILES', help: 'the artifacts: FILE or FILE#PLATFORM/ARCH', variadic: true, optional: true, check: artifactFile }],
          options: {
            product: { value: 'P', help: 'product directory in the manifest store', required: true },
            version: { value: 'V', help: 'semantic version, e.g. 1.12.2 or 1.13.0-beta.1 (default with --goreleaser: DIST/metadata.json\'s)' },
            channel: { value: 'C', help: 'stable or latest (default: stable and latest, prereleases latest only)', multiple: true, parse: oneOf('stable', 'latest') },
            'notes-url': { value: 'URL', help: 'release notes link', parse: httpUrl },
            'published-at': { value: 'ISO', help: 'publication time (default: now)' },
            'content-type': { value: 'T', help: 'content type for every file (default: from the extension)' },
            goreleaser: { value: 'DIST', help: 'add the archives GoReleaser listed in DIST/artifacts.json, checked against its checksums file' },
            ...releasesOption,
          },
          load: async () => (await release()).releaseAdd,
        },
      },
    },
    deploy: {
      summary: 'uploads the site and its artifacts to S3, then updates CloudFront',
      description: `Renders the manifest store and uploads the site and its artifacts to an S3 bucket: only objects
whose sha256 (kept in each object's metadata) changed, artifacts first, then indexes from the
deepest paths up, so no index ever names an object not yet uploaded. With a CloudFront
distribution, then: the route table into its KeyValueStore (by diff), its viewer-request function
(only when the code changed), and an invalidation of the changed files, waited for. Unreferenced
objects are deleted last. Credentials come from the standard AWS chain (environment, profile,
role); even --dry-run reads the bucket to plan (the README lists the IAM permissions).`,
      options: {
        bucket: { value: 'B', help: 'bucket name', required: true },
        prefix: { value: 'P', help: 'key prefix inside the bucket (default: the bucket root)' },
        region: { value: 'R', help: 'AWS region of the bucket (default: from the AWS configuration)' },
        endpoint: { value: 'URL', help: 'S3-compatible endpoint, path-style (default $AWS_ENDPOINT_URL_S3)', parse: httpUrl },
        'distribution-id': { value: 'ID', help: 'CloudFront distribution serving the bucket (without it, CloudFront steps are skipped)' },
        'kvs-arn': { value: 'ARN', help: 'its KeyValueStore (default: the one its viewer-request function reads)' },
        'invalidation-timeout': { value: 'S', help: 'seconds to wait for the invalidation', default: '900', parse: positiveInteger },
        'dry-run': { help: 'print the plan (uploads with reasons, store keys, function, invalidation paths, deletions) and change nothing' },
        'no-delete': { help: 'keep objects the site no longer references' },
        ...releasesOption,
      },
      load: async () => (await deploy()).deploy,
    },
    'cloudfront-function': {
      summary: 'prints the CloudFront viewer-request function\'s code',
      description: `The function (runtime cloudfront-js-2.0) routes requests from the KeyValueStore
\`mirror deploy --distribution-id\` fills. The code is the same for every catalog; deploy
publishes it when the distribution's function differs.`,
      options: {},
      load: async () => (await deploy()).cloudfrontFunction,
    },
    verify: {
      summary: 'crawls a mirror over HTTP and checks every file, redirect and signature',
      description: `Downloads every artifact and checks its size and sha256, checks every SHA256SUMS file, follows
every download redirect and checks where it lands. On a signed mirror it also checks the signed
snapshot (/.well-known/mirror/snapshot.json): its signatures, its expiry, its version against the
last one seen here, every file it names against its hash, and every SHA256SUMS file's OpenPGP
signatures. Each problem is printed with its kind: tampered, mix-and-match, rollback, freeze,
unknown-key, retired-key, bad-signature, missing. Exits 1 if there is any. Works against mirror
serve, nginx or a CDN.`,
      options: {
        'base-url': { value: 'URL', help: 'the mirror\'s origin, e.g. https://releases.example.com', required: true, parse: httpUrl },
        keys: { value: 'FILE', help: 'the keys to trust: the publisher\'s OpenPGP public keys (pgp-keys.asc or .gpg) or its JWKS (keys.json); without it, the mirror\'s published keys are trusted on first use and remembered in the state file' },
        state: { value: 'FILE', help: 'where the last snapshot seen and the trusted keys are kept (default $XDG_STATE_HOME/mirror/verify/<origin>.json, or ~/.local/state/...)' },
        concurrency: { value: 'N', help: 'downloads at a time', default: '4', parse: positiveInteger },
        timeout: { value: 'SECONDS', help: 'limit for each request, body included', default: '300', parse: positiveInteger },
      },
      load: async () => (await site()).verify,
    },
    keys: {
      summary: 'the OpenPGP keys that sign each release\'s SHA256SUMS file and the site\'s snapshot',
      description: `A production key can come from the settings instead: MIRROR_SIGNING_KEY (armored private key)
or MIRROR_SIGNING_KEY_FILE, with MIRROR_SIGNING_KEY_PASSPHRASE when it is protected.`,
      commands: {
        create: {
          summary: 'makes an Ed25519 signing key in $MIRROR_DATA_DIR/keys/',
          description: `Kept at mode 0600; from the next build on, it signs too (several active keys all sign, for rotation).`,
          options: {
            name: { value: 'NAME', help: 'user id name of the key', default: 'Release mirror' },
            email: { value: 'EMAIL', help: 'user id email of the key' },
          },
          load: async () => (await trust()).keysCreate,
        },
        list: {
          summary: 'lists every key: id, status, where it comes from, created, user id',
          options: {},
          load: async () => (await trust()).keysList,
        },
        retire: {
          summary: 'retires a key: it signs nothing new and stays published',
          description: `What it signed still checks; its private half is deleted from the data directory.`,
          positionals: [{ name: 'KEYID', help: 'the key\'s id, as `mirror keys list` shows it' }],
          options: {},
          load: async () => (await trust()).keysRetire,
        },
      },
    },
    snapshot: {
      summary: 'the site\'s signed snapshot',
      commands: {
        refresh: {
          summary: 'builds the site and signs a new snapshot even when nothing changed',
          description: `Extends its expiry (MIRROR_SNAPSHOT_EXPIRY_SECONDS, default 7 days). The sidecar does this by
itself when half the snapshot's life is gone; a site deployed with \`mirror deploy\` is refreshed
by deploying again (every deploy re-signs a snapshot past half its life).`,
          options: {
            ...releasesOption,
            out: { value: 'DIR', help: 'site path (default $MIRROR_DATA_DIR/site)' },
          },
          load: async () => (await trust()).snapshotRefresh,
        },
      },
    },
    'nginx-conf': {
      summary: 'prints an nginx.conf that serves a built site with the same routes as mirror serve',
      description: `Files and artifacts (from the blob store, not copied), content negotiation, redirects, and the
contracts' 400/404 bodies (through nginx's JavaScript module: apt-get install nginx
libnginx-mod-http-js). The config names the current build: write it again and reload nginx after
each mirror build. Its njs script is written next to the site, in <site>.nginx/. A route table of
up to 8 MiB is loaded into nginx whole; a larger one is read a shard at a time, as mirror serve
reads it, so nginx starts at once and holds little at any size.

Logs: not /dev/stdout or /dev/stderr: nginx cannot open them when its output is a socket
(systemd, a process manager, a pipe from Node's spawn).`,
      options: {
        site: { value: 'DIR', help: 'site path written by `mirror build` (default $MIRROR_DATA_DIR/site)' },
        listen: { value: 'HOST:PORT', help: 'address nginx listens on', default: '127.0.0.1:8080', parse: hostPort },
        'access-log': { value: 'PATH', help: 'nginx\'s access_log: a file (relative to nginx\'s prefix), syslog:server=… or off (default: nginx\'s own, `nginx -V` --http-log-path)' },
        'error-log': { value: 'PATH', help: 'nginx\'s error_log: a file, stderr or syslog:server=… (default: nginx\'s own, `nginx -V` --error-log-path)' },
      },
      load: async () => (await site()).nginxConf,
    },
    registry: {
      summary: 'operator commands for the agent registry',
      commands: {
        token: {
          summary: 'agentx_ tokens for registry users, without GitHub',
          description: `They work on the configured state database (DATABASE_URL or $MIRROR_DATA_DIR/state.db).`,
          commands: {
            create: {
              summary: 'prints an agentx_ token for a user, creating the user if needed',
              description: `Signs a user in without GitHub, for local use and scripts: the token may publish under the
scope @NAME. The user is created if this registry has none by that name.`,
              options: {
                user: { value: 'NAME', help: 'the username, lower-case letters, digits and -', required: true, parse: registryName },
                'display-name': { value: 'TEXT', help: 'shown on the user\'s profile (default NAME)' },
              },
              load: async () => (await registry()).registryTokenCreate,
            },
            revoke: {
              summary: 'makes a token invalid at once',
              positionals: [{ name: 'TOKEN', help: 'the agentx_ token to revoke' }],
              options: {},
              load: async () => (await registry()).registryTokenRevoke,
            },
          },
        },
      },
    },
    fleet: {
      summary: 'operator commands for the deployment-agent fleet',
      description: `Registration tokens are written to the state database directly, so they can be made before the
sidecar runs; the agents and task commands call the running fleet listener.`,
      commands: {
        ca: {
          summary: 'prints the fleet CA\'s certificate (PEM)',
          description: `What agents trust to reach the fleet listener, and what issues their client certificates.
Created on first use, its key kept with it in $MIRROR_DATA_DIR/fleet/ca.json at mode 0600 (or
FLEET_CA_CERT_FILE and FLEET_CA_KEY_FILE).`,
          options: {},
          load: async () => (await fleet()).fleetCa,
        },
        token: {
          summary: 'one-time registration tokens for agents',
          commands: {
            create: {
              summary: 'prints a one-time registration token, alone on the last line',
              description: `One agent registers with it (X-Agent-Token). Stored hashed in the state database.`,
              options: {
                ttl: { value: 'DURATION', help: 'how long it may wait to be used: 30m, 24h, 7d', default: '24h', parse: duration },
                label: { value: 'KEY=VALUE', help: 'a label every agent registered with it gets', multiple: true, parse: keyValue },
              },
              load: async () => (await fleet()).fleetTokenCreate,
            },
          },
        },
        agents: {
          summary: 'lists the registered agents as JSON',
          options: {
            status: { value: 'STATUS', help: 'online, degraded or offline', parse: oneOf('online', 'degraded', 'offline') },
            capability: { value: 'C', help: 'only agents with this capability' },
            ...fleetApiOptions,
          },
          load: async () => (await fleet()).fleetAgents,
        },
        task: {
          summary: 'tasks for agents',
          commands: {
            create: {
              summary: 'creates a task for an agent and prints it as JSON',
              description: `A connected agent's task stream receives it at once.`,
              positionals: [{ name: 'AGENT_ID', help: 'the agent, as `mirror fleet agents` lists it' }],
              options: {
                type: { value: 'TYPE', help: 'e.g. docker.pull', required: true },
                payload: { value: 'JSON', help: 'the task\'s payload object', default: '{}', parse: jsonObject },
                credential: { value: 'K=V', help: 'a credential handed to the agent only', multiple: true, parse: keyValue },
                timeout: { value: 'SECONDS', help: 'the lease of each attempt', default: '300', parse: positiveInteger },
                priority: { value: 'N', help: 'higher first', default: '0', parse: integer },
                ...fleetApiOptions,
              },
              load: async () => (await fleet()).fleetTaskCreate,
            },
            cancel: {
              summary: 'cancels a queued or running task; its agent\'s stream is told',
              positionals: [
                { name: 'AGENT_ID', help: 'the agent' },
                { name: 'TASK_ID', help: 'the task' },
              ],
              options: { ...fleetApiOptions },
              load: async () => (await fleet()).fleetTaskCancel,
            },
          },
        },
      },
    },
  },
};

/** An artifact named on the command line: an existing regular file, optionally `#PLATFORM/ARCH`. */
function artifactFile(spec: string): void {
  const hash = spec.lastIndexOf('#');
  if (hash !== -1 && !/^[^/]+\/[^/]+$/.test(spec.slice(hash + 1))) throw new Invalid('FILE or FILE#PLATFORM/ARCH');
  const file = hash === -1 ? spec : spec.slice(0, hash);
  const stats = statSync(file, { throwIfNoEntry: false });
  if (!stats) throw new UsageError(`${file}: no such file`);
  if (stats.isDirectory()) throw new UsageError(`${file} is a directory; name the artifact files in it`);
  if (!stats.isFile()) throw new UsageError(`${file} is not a regular file, so it cannot be an artifact`);
}

function registryName(text: string): string {
  const name = text.toLowerCase();
  if (!REGISTRY_NAME.test(name)) throw new Invalid('lower-case letters, digits and -');
  return name;
}
