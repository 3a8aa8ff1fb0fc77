# CPU-only fallback build of the addon (used when cmake-js is unavailable: `node-gyp rebuild`).
# Same sources as CMakeLists.txt; no OpenBLAS/LAPACKE and no CUDA (own kernels only); OpenMP on.
{
  "targets": [
    {
      "target_name": "rome_native",
      "sources": [
        "native/addon.cc", "native/napi_util.cc", "native/js_restore.cc", "native/js_moment.cc",
        "native/js_cholesky.cc", "native/js_update.cc", "native/js_info.cc",
        "native/common.cc", "native/restore.cc", "native/moment.cc", "native/cholesky.cc", "native/update.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "ROME_BLAS_NAME=\"none\""],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++14", "-std=gnu++1y"],
      "cflags_cc": ["-std=gnu++17", "-O3", "-ffp-contract=fast", "-fopenmp"],
      "ldflags": ["-fopenmp"],
      "xcode_settings": { "CLANG_CXX_LANGUAGE_STANDARD": "c++17", "OTHER_CPLUSPLUSFLAGS": ["-O3"] },
      "msvs_settings": { "VCCLCompilerTool": { "AdditionalOptions": ["/std:c++17", "/openmp"] } }
    }
  ]
}
