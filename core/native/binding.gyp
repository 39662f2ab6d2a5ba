# caviar's optional native addon: core/native/build.js runs node-gyp on this at install; a machine
# without a compiler or libopenblas-dev simply goes without it (workers use wasm, shards use JS).
{
  'targets': [
    {
      'target_name': 'caviar_native',
      'sources': ['addon.cc', 'blas.cc', 'elementwise.cc', 'optimizer.cc', 'pool.cc', 'conv-direct.cc', 'batch-norm.cc'],
      'dependencies': ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      'defines': ['NAPI_VERSION=8'],
      # -ffp-contract=off: no fused multiply-add, so optimizer.cc rounds exactly as the JS path
      # does; -fno-math-errno lets its square roots vectorize (they never set errno here).
      'cflags_cc': ['-O3', '-std=c++17', '-ffp-contract=off', '-fno-math-errno'],
      'libraries': ['-lopenblas'],
    }
  ]
}
