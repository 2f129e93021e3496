# Routing tests: one external node with room for two allocations of "web",
# six provider nodes (enough that job anti-affinity
# never pushes a replacement back to the external node). Nodes carry foresight.platform as
# agents publish it.
start = "2026-01-05T00:00:00Z"
step  = "10s"

node_group "ext" {
  platform   = "external"
  count      = 1
  node_pool  = "external"
  node_class = "ext"
  cpu_mhz    = 2000
  cores      = 2
  memory_mb  = 4096
  disk_mb    = 10000
  meta       = { "foresight.platform" = "external" }
}

node_group "cloud" {
  platform   = "provider"
  min        = 0
  max        = 6
  count      = 6
  node_pool  = "provider"
  node_class = "cloud"
  cpu_mhz    = 2000
  cores      = 2
  memory_mb  = 4096
  disk_mb    = 10000
  meta       = { "foresight.platform" = "provider" }
}

job "web" {
  file = "routing-web.json"
}
