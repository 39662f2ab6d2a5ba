#pragma once

#include <napi.h>

namespace caviar {

// The blas backend's NHWC average and max pooling and their gradients.
void RegisterPool(Napi::Env env, Napi::Object exports);

}  // namespace caviar
