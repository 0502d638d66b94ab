// jest globalSetup: generate the test certificates (test/fixtures/certs/) once per run.
const { execFileSync } = require('child_process');
const path = require('path');

module.exports = async () => {
  execFileSync('bash', [path.join(__dirname, '..', 'scripts', 'gen-certs.sh')], { stdio: 'inherit' });
};
