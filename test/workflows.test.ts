// The GitHub Actions workflows cannot run here; they are checked offline instead: each validates
// against the workflow schema (action-validator, from the npm registry, bundles it), and the CI
// matrix covers the four platforms with Node 20 and 22, builds the vendored stack, runs the tests,
// makes and uploads the prebuilds, which the release workflow gathers into the package.
import fs from 'node:fs';
import path from 'node:path';

import { runToExit } from './helpers/processes';

const ROOT = path.join(__dirname, '..');
const WORKFLOWS = path.join(ROOT, '.github', 'workflows');
const VALIDATOR = path.join(ROOT, 'node_modules', '@action-validator', 'cli', 'cli.mjs');

test.each(['ci.yml', 'release.yml'])('%s is a valid GitHub Actions workflow', async (name) => {
  const { code, stdout, stderr } = await runToExit(process.execPath, [VALIDATOR, path.join(WORKFLOWS, name)], process.env, 30000);
  expect({ code, output: stdout + stderr }).toEqual({ code: 0, output: '' });
});

test('the validator does refuse a broken workflow (so a pass means something)', async () => {
  const broken = path.join(fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'quicket-wf-')), 'broken.yml');
  fs.writeFileSync(broken, fs.readFileSync(path.join(WORKFLOWS, 'ci.yml'), 'utf8').replace('runs-on:', 'runs-onn:'));
  const { code } = await runToExit(process.execPath, [VALIDATOR, broken], process.env, 30000);
  expect(code).not.toBe(0);
});

test('the CI matrix: linux-x64, linux-arm64, darwin-x64, darwin-arm64 with Node 20 and 22; stack, tests, prebuilds', () => {
  const ci = fs.readFileSync(path.join(WORKFLOWS, 'ci.yml'), 'utf8');
  expect(ci).toMatch(/node: \[20, 22\]/);
  expect(ci).toMatch(/platform: \[linux-x64, linux-arm64, darwin-x64, darwin-arm64\]/);
  for (const step of ['node scripts/build-deps.js', 'npm test', 'npx prebuildify --napi --strip', 'actions/upload-artifact', 'actions/cache']) {
    expect({ step, present: ci.includes(step) }).toEqual({ step, present: true });
  }
  const release = fs.readFileSync(path.join(WORKFLOWS, 'release.yml'), 'utf8');
  expect(release).toContain('uses: ./.github/workflows/ci.yml');
  expect(release).toContain('actions/download-artifact');
  expect(release).toContain('npm publish');
});
