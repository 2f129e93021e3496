# foresight-apm's forecast as a metric, with the autoscaler's threshold
# strategy: the query answers the leader's p90 of the group's CPU demand for
# each 5-minute step of the next hour. When most of those steps are above
# 6000 MHz, hold 12 instances; when most are below 2000, hold 4.
scaling "ingest-forecast-threshold" {
  enabled = true
  type    = "horizontal"
  min     = 2
  max     = 16

  policy {
    evaluation_interval = "1m"
    cooldown            = "10m"

    check "busy-hour-ahead" {
      source = "foresight-apm"
      query  = "forecast:default/ingest/ingest:cpu_mhz:0.9:1h"

      strategy "threshold" {
        lower_bound           = 6000
        value                 = 12
        within_bounds_trigger = 7
      }
    }

    check "quiet-hour-ahead" {
      source = "foresight-apm"
      query  = "forecast:default/ingest/ingest:cpu_mhz:0.9:1h"

      strategy "threshold" {
        upper_bound           = 2000
        value                 = 4
        within_bounds_trigger = 7
      }
    }

    target "nomad-target" {
      Job   = "ingest"
      Group = "ingest"
    }
  }
}
