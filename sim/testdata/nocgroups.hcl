# One node whose tasks have cgroups of their own and one whose tasks run as
# raw_exec does on cgroup v1, without; for tests.
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
}

node_group "slow" {
  platform     = "external"
  count        = 1
  node_pool    = "external"
  node_class   = "slow"
  cpu_mhz      = 2000
  cores        = 2
  memory_mb    = 4096
  disk_mb      = 10000
  task_cgroups = false
}

job "app" {
  file = "jobs/app.json"

  workload "app" {
    trace            = "ramp.csv"
    scale            = 10
    io_write_per_mhz = 1000
  }
}
