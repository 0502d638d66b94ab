// jest globalSetup: generate the test certificates (test/fixtures/certs/) and compile lib/ to
// dist/ once per run, for tests that start child processes (the CLI, multi-process clusters).
const { execFileSync } = require('child_process');
const path = require('path');

module.exports = async () => {
  const root = path.join(__dirname, '..');
  execFileSync('bash', [path.join(root, 'scripts', 'gen-certs.sh')], { stdio: 'inherit' });
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], {
    stdio: 'inherit',
  });
};
