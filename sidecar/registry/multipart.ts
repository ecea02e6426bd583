// Reads a publish's multipart/form-data body with busboy: the `tarball` file is streamed to the
// blob store's staging area while it is hashed (constant memory), `agent_yaml` and `readme` are
// kept as text up to their limits (as fields, or as files for `curl -F readme=@README.md`).
// Nothing here decides whether the publish is valid: the problems found are returned with the parts.
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import busboy from 'busboy';
import { BlobTooLargeError, type BlobStore, type StagedBlob } from '../../generator/stores/blob-store.ts';
import { RegistryError } from './errors.ts';

export interface PublishFormLimits {
  tarballBytes: number;
  agentYamlBytes: number;
  readmeBytes: number;
}

export interface PublishForm {
  agentYaml: string | undefined;
  readme: string | undefined;
  tarball: StagedBlob | undefined;
  /** Contract-style problems with the parts themselves: unknown, repeated or oversized fields. */
  problems: string[];
}

type TextField = 'agent_yaml' | 'readme';

export function tarballTooLarge(limit: number): RegistryError {
  return new RegistryError(413, `The tarball is larger than the limit of ${limit} bytes (REGISTRY_MAX_TARBALL_BYTES)`);
}

export function receivePublishForm(req: IncomingMessage, blobs: BlobStore, limits: PublishFormLimits): Promise<PublishForm> {
  const textLimits: Record<TextField, number> = { agent_yaml: limits.agentYamlBytes, readme: limits.readmeBytes };
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      limits: { fileSize: limits.tarballBytes, fieldSize: Math.max(limits.agentYamlBytes, limits.readmeBytes) + 1, files: 3, fields: 10, parts: 13 },
    });
  } catch (error) {
    return Promise.reject(new RegistryError(400, `Malformed multipart body: ${(error as Error).message}`));
  }
  const form: PublishForm = { agentYaml: undefined, readme: undefined, tarball: undefined, problems: [] };
  const seen = new Set<string>();
  const pending: Promise<unknown>[] = [];

  return new Promise<PublishForm>((resolve, reject) => {
    let failure: unknown;
    let bodyBroken = false;
    const fail = (error: unknown) => {
      if (failure !== undefined) return;
      failure = error;
      req.unpipe(parser);
      req.resume();
      // Whatever was staged is removed before the caller hears of the failure.
      void Promise.allSettled(pending).then(async () => {
        await form.tarball?.discard();
        reject(error);
      });
    };
    const once = (name: string): boolean => {
      if (seen.has(name)) {
        form.problems.push(`${name}: given more than once`);
        return false;
      }
      seen.add(name);
      return true;
    };
    const setText = (name: TextField, value: string, truncated: boolean) => {
      // A form's text fields travel with CRLF line breaks (HTML's form encoding); they are stored as written.
      const text = value.replace(/\r\n/g, '\n');
      if (truncated || Buffer.byteLength(text) > textLimits[name]) form.problems.push(`${name}: larger than the limit of ${textLimits[name]} bytes`);
      else if (name === 'agent_yaml') form.agentYaml = text;
      else form.readme = text;
    };

    parser.on('field', (name, value, info) => {
      if (name === 'tarball') form.problems.push("tarball: expected a file part (curl -F 'tarball=@agent.tar.gz'), got a text field");
      else if (name !== 'agent_yaml' && name !== 'readme') form.problems.push(`unknown field '${name}'; expected tarball, agent_yaml and readme`);
      if ((name === 'agent_yaml' || name === 'readme') && once(name)) setText(name, value, info.valueTruncated);
    });
    parser.on('file', (name, stream) => {
      if (name === 'agent_yaml' || name === 'readme') {
        if (once(name)) pending.push(readText(stream, textLimits[name]).then(({ text, truncated }) => setText(name, text, truncated)));
        else stream.resume();
        return;
      }
      if (name !== 'tarball' || !once(name)) {
        if (name !== 'tarball') form.problems.push(`unknown file '${name}'; expected tarball, agent_yaml and readme`);
        stream.resume();
        return;
      }
      stream.on('limit', () => fail(tarballTooLarge(limits.tarballBytes)));
      pending.push(
        blobs.stage(stream, { maxBytes: limits.tarballBytes }).then(
          (staged) => {
            form.tarball = staged;
          },
          (error: unknown) => fail(error instanceof BlobTooLargeError ? tarballTooLarge(limits.tarballBytes) : bodyBroken ? new RegistryError(400, 'Malformed multipart body: it ended inside the tarball') : error),
        ),
      );
    });
    parser.on('filesLimit', () => form.problems.push('only the tarball, agent_yaml and readme parts are accepted'));
    parser.on('fieldsLimit', () => fail(new RegistryError(400, 'Malformed multipart body: too many fields')));
    parser.on('partsLimit', () => fail(new RegistryError(400, 'Malformed multipart body: too many parts')));
    parser.on('error', (error: Error) => {
      bodyBroken = true;
      fail(new RegistryError(400, `Malformed multipart body: ${error.message}`));
    });
    parser.on('close', () => {
      void Promise.all(pending).then(() => {
        if (failure === undefined) resolve(form);
      }, fail);
    });
    req.on('error', fail);
    req.pipe(parser);
  });
}

async function readText(stream: Readable, limit: number): Promise<{ text: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) truncated = true;
    else chunks.push(chunk);
  }
  return { text: Buffer.concat(chunks).toString('utf8'), truncated };
}
