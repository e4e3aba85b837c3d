// The npm packages live in tests/mcp/node (one lock file, one `npm ci` for every Node
// fixture); ES module resolution starts from the importing file, so resolve them there.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const require = createRequire(new URL('../mcp/node/package.json', import.meta.url));
const load = (name) => import(pathToFileURL(require.resolve(name)).href);

export const { default: Provider } = await load('oidc-provider');
export const jose = await load('jose');
