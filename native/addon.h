// Per-addon-instance state: constructors and the JS callbacks that lib/binding.ts registers once.
#pragma once

#include <napi.h>

#include "quic/connection_events.h"

namespace quicket {

struct AddonData {
  Napi::FunctionReference connection_constructor;
  // Registered once by lib/binding.ts; each takes the JS owner object first.
  Napi::FunctionReference on_connection;   // (engineOwner, nativeConnection) => connectionOwner
  events::Callbacks events;                // one per event kind: (connectionOwner, ...fields)
};

inline AddonData* GetAddonData(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

}  // namespace quicket
