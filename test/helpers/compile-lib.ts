// Compiles lib/*.ts to plain JavaScript in a temporary directory so a child process (plain node,
// no ts-jest) can require it. Transpile-only: type checking is the job of `npm run build:ts`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import ts from 'typescript';

const ROOT = path.join(__dirname, '..', '..');

export interface CompiledLib {
  /** Directory to require() (holds index.js). */
  dir: string;
  /** Environment for the child: points the loader at the addon this test run uses. */
  env: NodeJS.ProcessEnv;
  remove(): void;
}

export function compileLib(): CompiledLib {
  // base/lib/*.js beside base/package.json, as in the package (lib/index.ts reads its version).
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'quicket-lib-'));
  const dir = path.join(base, 'lib');
  fs.mkdirSync(dir);
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(base, 'package.json'));
  const libDir = path.join(ROOT, 'lib');
  for (const file of fs.readdirSync(libDir)) {
    if (!file.endsWith('.ts') || file.endsWith('.d.ts')) continue;
    const source = fs.readFileSync(path.join(libDir, file), 'utf8');
    const { outputText } = ts.transpileModule(source, {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    });
    fs.writeFileSync(path.join(dir, file.replace(/\.ts$/, '.js')), outputText);
  }
  // lib/binding.ts finds the addon relative to its own directory unless QUICKET_NATIVE says where.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const native = process.env.QUICKET_NATIVE ?? require('node-gyp-build').path(ROOT);
  return {
    dir,
    env: { ...process.env, QUICKET_NATIVE: path.resolve(native) },
    remove: () => fs.rmSync(base, { recursive: true, force: true }),
  };
}
