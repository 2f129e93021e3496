# foresight-strategy forecasting from the check's own metrics: any APM
# works. The autoscaler's Prometheus APM asks for one point a second, so a
# short window is all Prometheus will serve; the strategy keeps what every
# evaluation brings (per step of its grid, up to `history`), keeps the fit
# between evaluations and only appends what is new. Until it holds 32 steps
# (and twice the horizon) it scales on the latest value like target-value,
# and says so. The count provisions for the p90 of the group's total CPU
# over the next 20 minutes (its start-up lead time) at 400 MHz each.
scaling "web-forecast-prometheus" {
  enabled = true
  type    = "horizontal"
  min     = 2
  max     = 40

  policy {
    evaluation_interval = "1m"
    cooldown            = "3m"

    check "cpu-forecast" {
      source       = "prometheus"
      query        = "sum(nomad_client_allocs_cpu_total_ticks{exported_job=\"web\",task_group=\"web\"})"
      query_window = "5m"

      strategy "foresight-strategy" {
        target         = 400   # per instance, in the metric's unit
        horizon        = "20m" # provision this far ahead
        quantile       = 0.9
        max_scale_up   = 5
        max_scale_down = 2
        # step = "1m"      forecast grid; default 1m
        # history = "14d"  metrics kept per check
        # refit = "1h"     new data between full refits
      }
    }

    target "nomad-target" {
      Job   = "web"
      Group = "web"
    }
  }
}
