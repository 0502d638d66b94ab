// The API reference: typedoc (typedoc.json, as `npm run docs` runs it, but writing nothing) finds a
// TSDoc comment on every export of lib/index.ts and on each of their public members, and prints no
// warning. typedoc.json keeps it that way: its notDocumented validation with treatWarningsAsErrors
// fails the run when an export lacks one, as the second test checks on exports of every kind.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ExitResult, runToExit } from './helpers/processes';

const ROOT = path.join(__dirname, '..');
const TYPEDOC = path.join(path.dirname(require.resolve('typedoc/package.json')), 'bin', 'typedoc');

// Type errors are tsc's to report (the build, the other suites): typedoc skips that check here.
function typedoc(options: string): Promise<ExitResult> {
  return runToExit(process.execPath, [TYPEDOC, '--options', options, '--emit', 'none', '--skipErrorChecking'], process.env, 60000);
}

/** typedoc's [warning] and [error] lines, without their colours. */
function problems({ stdout, stderr }: ExitResult): string[] {
  return `${stdout}\n${stderr}`
    .replace(/\x1b\[[0-9;]*m/g, '') // eslint-disable-line no-control-regex
    .split('\n')
    .filter((line) => /^\[(warning|error)\]/.test(line.trim()));
}

// One export of each kind typedoc.json requires a comment on, none of them with one.
const UNDOCUMENTED = `
export class UndocumentedClass {
  constructor(value: number) { this.property = value; }
  property: number;
  method(): void {}
  get accessor(): number { return this.property; }
}
export interface UndocumentedInterface { field: string }
export type UndocumentedAlias = string;
export function undocumentedFunction(): void {}
export const undocumentedVariable = 1;
`;

let scratch: string;
let runs: Promise<[ExitResult, ExitResult]>;

beforeAll(() => {
  // The undocumented exports, checked with typedoc.json's settings (a small program of their own:
  // no @types, no DOM, so that the run takes a second rather than the package's few).
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'quicket-docs-'));
  fs.writeFileSync(path.join(scratch, 'entry.ts'), UNDOCUMENTED);
  fs.writeFileSync(path.join(scratch, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', lib: ['ES2022'], module: 'commonjs', strict: true, types: [], skipLibCheck: true },
    include: ['entry.ts'],
  }));
  // (typedoc.json names its own tsconfig and entry point, which --tsconfig and --entryPoints would not override.)
  fs.writeFileSync(path.join(scratch, 'typedoc.json'), JSON.stringify({
    extends: [path.join(ROOT, 'typedoc.json')],
    tsconfig: './tsconfig.json',
    entryPoints: ['./entry.ts'],
  }));
  runs = Promise.all([typedoc(path.join(ROOT, 'typedoc.json')), typedoc(path.join(scratch, 'typedoc.json'))]);
});

afterAll(() => {
  fs.rmSync(scratch, { recursive: true, force: true });
});

test('typedoc documents every public export with no warning', async () => {
  const [run] = await runs;
  expect({ problems: problems(run), code: run.code }).toEqual({ problems: [], code: 0 });
});

test('typedoc.json fails the run on any export, or public member, without a TSDoc comment', async () => {
  const config = JSON.parse(fs.readFileSync(path.join(ROOT, 'typedoc.json'), 'utf8'));
  expect(config).toMatchObject({ treatWarningsAsErrors: true, validation: { notDocumented: true } });
  const [, run] = await runs;
  const found = problems(run).map((line) => {
    const match = /^\[warning\] (\S+) \((\w+)\), defined in .*, does not have any documentation$/.exec(line);
    return match ? `${match[1]} (${match[2]})` : line;
  });
  expect(found.sort()).toEqual([
    'UndocumentedClass (Class)',
    'UndocumentedClass.constructor (ConstructorSignature)',
    'UndocumentedClass.property (Property)',
    'UndocumentedClass.method (CallSignature)',
    'UndocumentedClass.accessor (GetSignature)',
    'UndocumentedInterface (Interface)',
    'UndocumentedInterface.field (Property)',
    'UndocumentedAlias (TypeAlias)',
    'undocumentedFunction (CallSignature)',
    'undocumentedVariable (Variable)',
    '[warning] Found 0 errors and 10 warnings',
  ].sort());
  expect(run.code).not.toBe(0);
});
