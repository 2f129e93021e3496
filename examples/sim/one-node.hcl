# The cluster of the first real trial (Nomad 1.6.5, one client node, cgroup
# v1): one node, so one resource class; Foresight's own agent and a log
# shipper as system jobs; "web", two raw_exec `python3 -m http.server` of
# 64 MB reserved that each hold about 80 MB however many there are (memory
# flat in the count, almost no CPU); and "cache", whose memory follows the
# requests it serves, so it splits over instances. Both services are
# enforced. What Foresight must do here: no count for the system jobs, no
# scale-out of web on its memory, no affinity rewrite (nothing else to
# place on), and scale cache out as its load rises.

start = "2026-01-05T00:00:00Z"
step  = "10s"

node_group "only" {
  platform   = "external"
  count      = 1
  datacenter = "dc1"
  node_class = "vm"
  cpu_mhz    = 4000
  cores      = 4
  memory_mb  = 8192
  disk_mb    = 50000
}

job "foresight" {
  file = "jobs/foresight-agent.json"

  workload "agent" {
    trace          = "flat.csv"
    scale          = 2 # about 20 MHz on the node
    memory_base_mb = 81
  }
}

job "logs" {
  file = "jobs/logs.json"

  workload "ship" {
    trace          = "flat.csv"
    scale          = 3
    memory_base_mb = 40
  }
}

job "web" {
  file = "jobs/web-flat.json"

  workload "web" {
    trace          = "flat.csv"
    scale          = 2   # 20 MHz in all: an idle http.server
    memory_base_mb = 80  # held by each instance, whatever the count
  }
}

job "cache" {
  file = "jobs/cache.json"

  workload "cache" {
    trace          = "rise.csv"
    scale          = 4     # 40 → 480 MHz of requests
    memory_base_mb = 16
    memory_per_ghz = 1000  # 1 MB per MHz of requests served: it splits
  }
}
