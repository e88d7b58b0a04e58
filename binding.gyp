{
  "targets": [
    {
      "target_name": "sparkler",
      "sources": ["native/sparkler.c", "native/memory.c", "native/vcpu.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lpthread"]
    }
  ]
}
