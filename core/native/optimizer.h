#pragma once

#include <napi.h>

namespace caviar {

// The shards' per-element optimizer loops, for ps/optimizers.ts.
void RegisterOptimizer(Napi::Env env, Napi::Object exports);

}  // namespace caviar
