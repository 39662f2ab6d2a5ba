#pragma once

#include <napi.h>

namespace caviar {

// The blas backend's light kernels: element-wise arithmetic with broadcasts, ReLU, Step, sums.
void RegisterElementwise(Napi::Env env, Napi::Object exports);

}  // namespace caviar
