{
  "targets": [
    {
      "target_name": "sparkler",
      "sources": ["native/sparkler.c", "native/memory.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lpthread"]
    }
  ]
}
