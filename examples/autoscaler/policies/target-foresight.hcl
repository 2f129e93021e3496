# foresight-target: the autoscaler decides how many, Foresight decides
# where and makes room (provider capacity, placement). In recommend mode
# the leader records the action and writes nothing; the target then logs
# the leader's reasons and the autoscaler carries on (a no-op, not an
# error). Its status reports the leader's view of the count and the time of
# the last count change, Foresight's own included, so cooldowns see them.
scaling "web-through-foresight" {
  enabled = true
  type    = "horizontal"
  min     = 2
  max     = 40

  policy {
    evaluation_interval = "1m"
    cooldown            = "5m"

    check "cpu-forecast" {
      source       = "foresight-apm"
      query        = "usage:default/web/web:cpu_mhz"
      query_window = "336h"

      strategy "foresight-strategy" {
        target  = 400
        horizon = "20m"
        step    = "5m"
      }
    }

    target "foresight-target" {
      namespace = "default"
      job       = "web"
      group     = "web"
      # address = "http://127.0.0.1:7460"  default: the plugin's, FORESIGHT_ADDR, Consul
    }
  }
}
