{
  "targets": [
    {
      "target_name": "quicket",
      "sources": [
        "<!@(node -p \"require('./native/sources.json').join(' ')\")"
      ],
      "include_dirs+": [
        "<!(node scripts/build-deps.js --include)"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "libraries": [
        "<!@(node scripts/build-deps.js --libs)",
        "-lpthread",
        "-ldl"
      ],
      "conditions": [
        ["OS=='mac'", {
          "xcode_settings": {
            "OTHER_LDFLAGS": ["-Wl,-exported_symbols_list,<(module_root_dir)/native/exports.txt"]
          }
        }, {
          "ldflags": ["-Wl,--exclude-libs,ALL", "-Wl,--version-script=<(module_root_dir)/native/exports.map"]
        }]
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-fexceptions", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
    }
  ]
}
