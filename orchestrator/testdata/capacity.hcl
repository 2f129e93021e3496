# A rack of owned capacity and an elastic cloud pool, for the capacity
# actuator's tests.
start = "2026-01-05T00:00:00Z"
step  = "10s"

node_group "rack" {
  platform   = "external"
  count      = 1
  node_pool  = "all"
  node_class = "rack"
  cpu_mhz    = 2000
  cores      = 2
  memory_mb  = 4096
  disk_mb    = 10000
}

node_group "cloud" {
  platform        = "provider"
  min             = 1
  max             = 4
  count           = 1
  provision_delay = "2m"
  node_pool       = "all"
  node_class      = "cloud"
  cpu_mhz         = 2000
  cores           = 2
  memory_mb       = 4096
  disk_mb         = 10000
}

job "app" {
  file = "../../sim/testdata/jobs/app.json"
}
