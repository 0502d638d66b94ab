// The package as users load it, by its name (a package may import itself through its exports
// map): named ES module imports and require() give the same objects, only the exports map's
// entry points load, and the published types leave out what is @internal.
import fs from 'node:fs';
import path from 'node:path';

import { runToExit } from './helpers/processes';

const ROOT = path.join(__dirname, '..');

async function node(args: string[]): Promise<string> {
  const { code, stdout, stderr } = await runToExit(process.execPath, args, process.env, 30000);
  if (code !== 0) throw new Error(`node ${args.join(' ')} exited ${code}: ${stderr}`);
  return stdout.trim();
}

test("import { Engine, SslConfig, ... } from 'quicket' works in an ES module and shares require()'s instance", async () => {
  const script = `
    import { Engine, SslConfig, Connection, Stream, Ticket, Http3Server, request, versions } from 'quicket';
    import quicket from 'quicket';
    import { createRequire } from 'node:module';
    const required = createRequire(import.meta.url)('quicket');
    const names = { Engine, SslConfig, Connection, Stream, Ticket, Http3Server, request, versions };
    console.log(JSON.stringify({
      kinds: Object.fromEntries(Object.entries(names).map(([name, value]) => [name, typeof value])),
      same: Object.entries(names).every(([name, value]) => required[name] === value && quicket[name] === value),
    }));`;
  const out = JSON.parse(await node(['--input-type=module', '-e', script]));
  expect(out).toEqual({
    kinds: { Engine: 'function', SslConfig: 'function', Connection: 'function', Stream: 'function', Ticket: 'object', Http3Server: 'function', request: 'function', versions: 'object' },
    same: true,
  });
});

test('internal files are not importable, by require() or import', async () => {
  const script = `
    const codes = [];
    for (const specifier of ['quicket/dist/engine', 'quicket/dist/engine.js', 'quicket/dist/binding.js', 'quicket/lib/engine']) {
      try { require(specifier); codes.push('loaded ' + specifier); } catch (error) { codes.push(error.code); }
    }
    import('quicket/dist/connection.js').then(() => codes.push('imported'), (error) => codes.push(error.code))
      .then(() => console.log(JSON.stringify(codes)));`;
  expect(JSON.parse(await node(['-e', script]))).toEqual(Array(5).fill('ERR_PACKAGE_PATH_NOT_EXPORTED'));
});

test('the published declarations leave out @internal members', () => {
  const dts = fs.readdirSync(path.join(ROOT, 'dist')).filter((name) => name.endsWith('.d.ts'));
  const text = dts.map((name) => fs.readFileSync(path.join(ROOT, 'dist', name), 'utf8')).join('\n');
  for (const internal of ['kAttachNative]', 'nativeWrite(', 'decodeTicket', 'nativeEventCallbacks', '[kOnConnection]', 'failOpen(']) {
    expect({ internal, published: text.includes(internal) }).toEqual({ internal, published: false });
  }
  expect(fs.readFileSync(path.join(ROOT, 'dist', 'index.d.mts'), 'utf8')).toContain("export * from './index.js'");
});
