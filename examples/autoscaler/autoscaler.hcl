# Nomad Autoscaler agent config with Foresight's plugins, for a local run
# against `foresight sim` (or a real cluster: change the addresses).
#
#   make build                                   # bin/foresight-strategy, -apm, -target
#   foresight sim -config examples/sim/hybrid.hcl &
#   foresight agent -sim -node-id <a node ID> &  # one per node; the first to lock leads
#   nomad-autoscaler agent -config examples/autoscaler/autoscaler.hcl
#
# The plugins find the Foresight leader at `address`, else FORESIGHT_ADDR,
# else through the Consul election key (CONSUL_HTTP_ADDR).

plugin_dir = "./bin" # where foresight-strategy, foresight-apm and foresight-target are

nomad {
  address = "http://127.0.0.1:4646"
}

policy {
  dir                         = "./examples/autoscaler/policies"
  default_evaluation_interval = "1m"
  default_cooldown            = "5m"
}

# For policies/strategy-metrics.hcl, which reads Prometheus:
# apm "prometheus" {
#   driver = "prometheus"
#   config = {
#     address = "http://prometheus.service.consul:9090"
#   }
# }

apm "foresight-apm" {
  driver = "foresight-apm"
  config = {
    address = "http://127.0.0.1:7460"
  }
}

strategy "foresight-strategy" {
  driver = "foresight-strategy"
  config = {
    address = "http://127.0.0.1:7460" # the default for checks with source = "leader"
  }
}

target "foresight-target" {
  driver = "foresight-target"
  config = {
    address = "http://127.0.0.1:7460"
  }
}
