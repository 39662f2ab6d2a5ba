# The optional native half of the `blas` compute backend: worker/blas/build.js runs node-gyp on
# this at install; a machine without a compiler or libopenblas-dev simply goes without it.
{
  'targets': [
    {
      'target_name': 'caviar_blas',
      'sources': ['caviar_blas.cc'],
      'dependencies': ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      'defines': ['NAPI_VERSION=8'],
      'cflags_cc': ['-O3', '-std=c++17'],
      'libraries': ['-lopenblas'],
    }
  ]
}
