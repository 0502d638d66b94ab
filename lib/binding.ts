// Loads the native addon once and registers the two callbacks native code uses to reach JS.
import path from 'node:path';

/* eslint-disable @typescript-eslint/no-explicit-any */
export interface NativeBinding {
  Engine: new (owner: object, options: object) => any;
  SslConfig: new (options: object) => any;
  setCallbacks(callbacks: {
    onConnection(engineOwner: any, nativeConnection: any): object | undefined;
    onEvent(connectionOwner: any, type: string, a?: unknown, b?: unknown, c?: unknown, d?: unknown): unknown;
  }): void;
  versions: { openssl: string; ngtcp2: string; nghttp3: string };
}

export const kOnConnection = Symbol('quicket.onConnection');
export const kOnNativeEvent = Symbol('quicket.onNativeEvent');

function load(): NativeBinding {
  // QUICKET_NATIVE points at a specific build (the AddressSanitizer one, a prebuild under test).
  if (process.env.QUICKET_NATIVE) return require(path.resolve(process.env.QUICKET_NATIVE));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('node-gyp-build')(path.join(__dirname, '..'));
}

export const binding: NativeBinding = load();

binding.setCallbacks({
  onConnection: (engineOwner, nativeConnection) => engineOwner[kOnConnection](nativeConnection),
  // Fixed arity (native passes at most four values): no rest arrays on this hot path.
  onEvent: (connectionOwner, type, a, b, c, d) => connectionOwner[kOnNativeEvent](type, a, b, c, d),
});
