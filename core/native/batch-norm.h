#pragma once

#include <napi.h>

namespace caviar {

// BatchNorm over the last axis for the blas backend: training's forward (batch moments out) and
// its gradient, and inference with given statistics.
void RegisterBatchNorm(Napi::Env env, Napi::Object exports);

}  // namespace caviar
