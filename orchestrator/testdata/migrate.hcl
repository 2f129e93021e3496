# Migration tests: job "api" steers to class b with a managed affinity, but
# b has no node when the job is placed, so its allocations run on class a.
# Resizing node group b makes room appear.
start = "2026-01-05T00:00:00Z"
step  = "10s"

node_group "a" {
  platform   = "external"
  count      = 2
  node_pool  = "external"
  node_class = "a"
  cpu_mhz    = 2000
  cores      = 2
  memory_mb  = 4096
  disk_mb    = 10000
  meta       = { "foresight.class" = "a" }
}

node_group "b" {
  platform        = "provider"
  min             = 0
  max             = 3
  count           = 0
  provision_delay = "1m"
  node_pool       = "provider"
  node_class      = "b"
  cpu_mhz         = 2000
  cores           = 2
  memory_mb       = 4096
  disk_mb         = 10000
  meta            = { "foresight.class" = "b" }
}

job "api" {
  file = "migrate-api.json"
}
