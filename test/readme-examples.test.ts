// The README's TypeScript examples compile against the published types: each ```ts block is a
// module of a throwaway project that imports 'quicket' through the package's exports map (dist/,
// built by test/global-setup.js), checked by tsc as a user's project would be. Names an example
// leaves to the reader (cert, key, ca, a stored ticket, saveTicket) are declared for it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { runToExit } from './helpers/processes';

const ROOT = path.join(__dirname, '..');
const GIVEN: Record<string, string> = {
  cert: 'declare const cert: Buffer;',
  key: 'declare const key: Buffer;',
  ca: 'declare const ca: Buffer;',
  ticket: 'declare const ticket: Buffer | undefined;',
  saveTicket: 'declare function saveTicket(key: string, ticket: Buffer): void;',
};

function examples(): Array<{ line: number; code: string }> {
  const lines = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n');
  const blocks: Array<{ line: number; code: string }> = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== '```ts') continue;
    const start = i + 1;
    while (++i < lines.length && lines[i].trim() !== '```');
    blocks.push({ line: start + 1, code: lines.slice(start, i).join('\n') });
  }
  return blocks;
}

test('every ```ts example in the README type-checks against the published declarations', async () => {
  const blocks = examples();
  expect(blocks.length).toBeGreaterThanOrEqual(4);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quicket-readme-'));
  try {
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'quicket'));
    fs.symlinkSync(path.join(ROOT, 'node_modules', '@types'), path.join(dir, 'node_modules', '@types'));
    const files = blocks.map(({ line, code }) => {
      const given = Object.entries(GIVEN)
        .filter(([name]) => new RegExp(`\\b${name}\\b`).test(code) && !new RegExp(`\\b(const|let|function)\\s+${name}\\b`).test(code))
        .map(([, declaration]) => declaration);
      const file = `readme-line-${line}.mts`;
      fs.writeFileSync(path.join(dir, file), `${given.join('\n')}\n${code}\nexport {};\n`);
      return file;
    });
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { module: 'node16', moduleResolution: 'node16', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] },
      files,
    }));
    const { code, stdout, stderr } = await runToExit(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', dir], process.env, 60000);
    // tsc names the README line of each block in the file name: readme-line-N.mts(row,col).
    expect({ code, errors: stdout + stderr }).toEqual({ code: 0, errors: '' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
