// Records the folder the extension is built from (the crush-ls checkout), which
// "Crush: Install crush-ls" installs by default.
const { writeFileSync } = require('node:fs');
const { join, resolve } = require('node:path');
const folder = resolve(__dirname, '..', '..', '..');
writeFileSync(join(__dirname, '..', 'out', 'source.json'), JSON.stringify({ folder }) + '\n');
