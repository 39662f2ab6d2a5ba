// caviar's optional native addon: OpenBLAS kernels for the workers' `blas` compute backend and
// the optimizer loops of the parameter-server shards. core/native/addon.ts loads it; every
// caller keeps a JS path for machines where it does not build.
#include <napi.h>

#include "batch-norm.h"
#include "blas.h"
#include "elementwise.h"
#include "optimizer.h"
#include "pool.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  caviar::RegisterBlas(env, exports);
  caviar::RegisterElementwise(env, exports);
  caviar::RegisterOptimizer(env, exports);
  caviar::RegisterPool(env, exports);
  caviar::RegisterBatchNorm(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(caviar_native, Init)
