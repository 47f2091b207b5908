// node-oidc-provider 9 in production mode as a 2-process cluster (one worker per core by
// default): client_credentials with RS256 JWT access tokens (resource indicators) and its
// JWKS. The primary makes one RSA-2048 key and hands it to the workers, so every worker
// signs with and publishes the same key.
//
//   PORT=9090 WORKERS=2 NODE_ENV=production node server.mjs
//   client: bench-cc / bench-secret (client_secret_basic), resource urn:bench:api
import cluster from 'node:cluster';
import { generateKeyPairSync } from 'node:crypto';
import os from 'node:os';

const port = Number(process.env.PORT || 9090);
const workers = Number(process.env.WORKERS || os.availableParallelism());

if (cluster.isPrimary) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-1', use: 'sig', alg: 'RS256' };
  for (let i = 0; i < workers; i += 1) {
    cluster.fork({ BENCH_JWK: JSON.stringify(jwk) });
  }
  cluster.on('exit', (worker, code) => {
    console.error(`worker ${worker.process.pid} exited with ${code}`);
  });
} else {
  const { default: Provider } = await import('oidc-provider');
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [{
      client_id: 'bench-cc',
      client_secret: 'bench-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [JSON.parse(process.env.BENCH_JWK)] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'urn:bench:api',
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'api',
          audience: 'urn:bench:api',
          accessTokenTTL: 900,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
  });
  provider.listen(port, '127.0.0.1');
}
