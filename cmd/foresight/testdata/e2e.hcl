# Three fixed nodes, one of them with spinning disks and tasks without
# cgroups of their own (raw_exec on cgroup v1), running one service, for the
# end-to-end tests of the agents against sim.
start = "2026-01-05T00:00:00Z"
step  = "1s"

node_group "ssd" {
  platform   = "external"
  count      = 2
  node_class = "general"
  cpu_mhz    = 2000
  cores      = 2
  memory_mb  = 4096
  disk_mb    = 10000
}

node_group "hdd" {
  platform   = "external"
  count      = 1
  node_class = "archive"
  storage    = "hdd"
  # Its tasks run as raw_exec on cgroup v1: no cgroup of their own.
  task_cgroups = false
  cpu_mhz    = 2000
  cores      = 2
  memory_mb  = 4096
  disk_mb    = 10000
}

job "app" {
  file = "jobs/app.json"

  workload "app" {
    trace = "ramp.csv"
    scale = 2 # MHz per trace unit: far below the three allocations, so the leader always wants fewer
  }
}
