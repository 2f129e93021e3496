# foresight-strategy asking the Foresight leader for the group's forecast
# (source = "leader"). The check's metric (here the leader's usage through
# foresight-apm) is what the strategy scales on, like target-value, while
# the leader has too little history to forecast.
scaling "api-forecast-leader" {
  enabled = true
  type    = "horizontal"
  min     = 1
  max     = 20

  policy {
    evaluation_interval = "1m"
    cooldown            = "5m"

    check "cpu-forecast" {
      source       = "foresight-apm"
      query        = "usage:default/api/api:cpu_mhz"
      query_window = "10m"

      strategy "foresight-strategy" {
        source   = "leader"
        group    = "default/api/api"
        metric   = "cpu_mhz"
        target   = 500
        horizon  = "30m"
        quantile = 0.95
        # address = "http://foresight.service.consul:7460"  default: the plugin's, FORESIGHT_ADDR, Consul
      }
    }

    target "nomad-target" {
      Job   = "api"
      Group = "api"
    }
  }
}
