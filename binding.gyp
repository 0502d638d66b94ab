{
  "targets": [
    {
      "target_name": "quicket",
      "sources": [
        "<!@(node -p \"require('./native/sources.json').join(' ')\")"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(pkg-config --cflags-only-I libngtcp2 libngtcp2_crypto_gnutls libnghttp3 gnutls | sed 's/-I//g')"
      ],
      "libraries": [
        "<!@(pkg-config --libs libngtcp2 libngtcp2_crypto_gnutls libnghttp3 gnutls)"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NAPI_CPP_EXCEPTIONS"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-fexceptions", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
    }
  ]
}
