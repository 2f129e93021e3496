# Two fixed nodes of different classes and an elastic pool, for tests.
start = "2026-01-05T00:00:00Z"
step  = "10s"

node_group "fast" {
  platform   = "external"
  count      = 1
  node_pool  = "external"
  node_class = "fast"
  cpu_mhz    = 2000
  cores      = 2
  memory_mb  = 4096
  disk_mb    = 10000
  meta       = { platform = "external" }
}

node_group "slow" {
  platform   = "external"
  count      = 1
  node_pool  = "external"
  node_class = "slow"
  cpu_mhz    = 2000
  cores      = 2
  memory_mb  = 4096
  disk_mb    = 10000
  meta       = { platform = "external" }
}

node_group "cloud" {
  platform        = "provider"
  min             = 0
  max             = 3
  provision_delay = "2m"
  node_pool       = "provider"
  node_class      = "cloud"
  cpu_mhz         = 2000
  cores           = 2
  memory_mb       = 4096
  disk_mb         = 10000
  meta            = { platform = "provider" }
}

job "app" {
  file = "jobs/app.json"

  workload "app" {
    trace = "ramp.csv"
    scale = 10
    efficiency = {
      fast = 2
    }
  }
}
