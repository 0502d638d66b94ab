// jest globalSetup: generate the test certificates (test/fixtures/certs/) and compile lib/ to
// dist/ (and its ES module face) once per run, for tests that start child processes (the CLI,
// multi-process clusters) or load the package by its name.
const { execFileSync } = require('child_process');
const path = require('path');

module.exports = async () => {
  const root = path.join(__dirname, '..');
  execFileSync('bash', [path.join(root, 'scripts', 'gen-certs.sh')], { stdio: 'inherit' });
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], {
    stdio: 'inherit',
  });
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build-esm.js')], { stdio: 'ignore' });
};
