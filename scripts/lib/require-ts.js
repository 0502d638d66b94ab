// Lets plain-node scripts require() TypeScript files from the test tree (the UDP relay, the test
// helpers) by transpiling them on load: transpile-only, no type checking (npm run build:ts and
// jest do that). Installed once per process.
'use strict';

const fs = require('node:fs');
const ts = require('typescript');

if (!require.extensions['.ts']) {
  require.extensions['.ts'] = (module, filename) => {
    const source = fs.readFileSync(filename, 'utf8');
    const { outputText } = ts.transpileModule(source, {
      fileName: filename,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    });
    module._compile(outputText, filename);
  };
}
