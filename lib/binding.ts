// Loads the native addon once and registers the two callbacks native code uses to reach JS.
import path from 'node:path';

import { nativeEventCallbacks } from './native-events';

/* eslint-disable @typescript-eslint/no-explicit-any */
/** @internal */
export interface NativeBinding {
  Engine: new (owner: object, options: object) => any;
  SslConfig: new (options: object) => any;
  setCallbacks(callbacks: {
    onConnection(engineOwner: any, nativeConnection: any): object | undefined;
    /** One function per kind of connection event (lib/native-events.ts). */
    events: typeof nativeEventCallbacks;
  }): void;
  versions: { openssl: string; ngtcp2: string; nghttp3: string };
  socketFeatures: { gso: boolean; gro: boolean; icmpErrors: boolean; reusePort: boolean };
  /** Bytes held by ngtcp2 and OpenSSL (counted only with QUICKET_MEMORY_ACCOUNTING=1) and malloc's heap. */
  memoryUsage(): { counting: boolean; ngtcp2: number; openssl: number; heapInUse: number; heapFree: number };
}

/** @internal */
export const kOnConnection = Symbol('quicket.onConnection');

function load(): NativeBinding {
  // QUICKET_NATIVE points at a specific build (the AddressSanitizer one, a prebuild under test).
  if (process.env.QUICKET_NATIVE) return require(path.resolve(process.env.QUICKET_NATIVE));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('node-gyp-build')(path.join(__dirname, '..'));
}

/** @internal */
export const binding: NativeBinding = load();

binding.setCallbacks({
  onConnection: (engineOwner, nativeConnection) => engineOwner[kOnConnection](nativeConnection),
  events: nativeEventCallbacks,
});
