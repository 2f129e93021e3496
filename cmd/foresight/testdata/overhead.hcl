# One node running 100 tasks, and one idle node whose agent leads, to
# measure what the agent costs on a busy node (make bench).
start = "2026-01-05T00:00:00Z"

node_group "busy" {
  platform   = "external"
  count      = 1
  node_class = "busy"
  cpu_mhz    = 2000
  cores      = 64
  memory_mb  = 262144
  disk_mb    = 100000
}

node_group "idle" {
  platform   = "external"
  count      = 1
  node_class = "idle"
  cpu_mhz    = 2000
  cores      = 4
  memory_mb  = 8192
  disk_mb    = 10000
}

job "load" {
  file = "jobs/load.json"

  workload "load" {
    trace = "ramp.csv"
    scale = 50
  }
}
