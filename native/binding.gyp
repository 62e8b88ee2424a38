{
  "targets": [
    {
      "target_name": "nodemesh_native",
      "sources": [
        "src/addon.cc",
        "src/errors.cc",
        "src/objects.cc",
        "src/maps.cc",
        "src/netns.cc",
        "src/netns-sysctl.cc",
        "src/memory.cc",
        "src/splice.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS", "NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror"],
      "libraries": ["-lbpf", "-lelf"]
    }
  ]
}
