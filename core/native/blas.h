#pragma once

#include <napi.h>

namespace caviar {

// gemm, the convolutions and OpenBLAS's thread controls, for worker/blas/kernels.ts.
void RegisterBlas(Napi::Env env, Napi::Object exports);

}  // namespace caviar
