{
  "targets": [
    {
      "target_name": "sparkler",
      "sources": ["native/sparkler.c", "native/fd-io.c", "native/fd-watch.c", "native/memory.c", "native/vcpu.c", "native/fast-pio.c", "native/isolation.c", "native/unix-socket.c", "native/uncounted-buffer.cc"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_c": ["-std=gnu11"],
      "cflags_cc": ["-std=gnu++17"],
      "libraries": ["-lpthread"]
    }
  ]
}
