package apm

import (
	"context"
	"errors"
	"time"

	"github.com/foresight-nomad/foresight/leaderapi"
	"github.com/foresight-nomad/foresight/plugin/internal/leaderconf"
	"github.com/hashicorp/go-hclog"
	asapm "github.com/hashicorp/nomad-autoscaler/plugins/apm"
	"github.com/hashicorp/nomad-autoscaler/plugins/base"
	"github.com/hashicorp/nomad-autoscaler/sdk"
)

// APMName is foresight-apm's plugin name.
const APMName = "foresight-apm"

// Steps of the answers: usage at the finest step the leader serves for the
// window (at least a minute), forecasts at five minutes (a minute for
// horizons under five minutes).
const (
	usageMinStep    = time.Minute
	usageMaxPoints  = 20000 // the leader's limit per series answer
	forecastStep    = 5 * time.Minute
	forecastMinStep = time.Minute
	instantWindow   = 5 * time.Minute // looked back over for an instant query
)

// APM is foresight-apm: it answers the autoscaler's queries from the
// Foresight leader's API. `usage:<ns>/<job>/<group>:<metric>` is the
// group's demand (summed over its allocations) over the query window, one
// point per step; `forecast:<ns>/<job>/<group>:<metric>:<q>:<horizon>` is
// the leader's q-quantile forecast of that demand, one point per step of
// the coming horizon, timestamped in the future (so a strategy that reads
// the latest point sees the demand expected one horizon ahead).
type APM struct {
	log    hclog.Logger
	leader *leaderapi.Client
}

var _ asapm.APM = (*APM)(nil)

// New returns foresight-apm, unconfigured.
func New(log hclog.Logger) *APM { return &APM{log: log} }

// PluginInfo satisfies base.Base.
func (a *APM) PluginInfo() (*base.PluginInfo, error) {
	return &base.PluginInfo{Name: APMName, PluginType: sdk.PluginTypeAPM}, nil
}

// SetConfig satisfies base.Base: it takes the leader's address (see
// package leaderconf for the keys).
func (a *APM) SetConfig(config map[string]string) error {
	l, err := leaderconf.New(config)
	if err != nil {
		return err
	}
	a.leader = l
	return nil
}

// Query satisfies apm.Looker.
func (a *APM) Query(query string, r sdk.TimeRange) (sdk.TimestampedMetrics, error) {
	if a.leader == nil {
		return nil, errors.New("foresight-apm is not configured")
	}
	q, err := ParseQuery(query)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaderconf.Timeout)
	defer cancel()
	var out sdk.TimestampedMetrics
	switch q.Kind {
	case QueryUsage:
		from, to, instant := r.From, r.To, !r.From.Before(r.To)
		if instant {
			from = to.Add(-instantWindow)
		}
		step := usageStep(to.Sub(from))
		series, err := a.leader.Series(ctx, q.Group, q.Metric, from.Truncate(step), to, step)
		if err != nil {
			return nil, err
		}
		for _, p := range series.Points {
			if p.Slots > 0 && finite(p.Mean) {
				out = append(out, sdk.TimestampedMetric{Timestamp: p.Time, Value: p.Mean})
			}
		}
		if instant && len(out) > 1 {
			out = out[len(out)-1:]
		}
	case QueryForecast:
		step := forecastStep
		if q.Horizon < forecastStep {
			step = forecastMinStep
		}
		f, err := a.leader.Forecast(ctx, q.Group, q.Metric, []float64{q.Quantile}, q.Horizon, step)
		if err != nil {
			return nil, err
		}
		values, err := f.Quantile(q.Quantile)
		if err != nil {
			return nil, err
		}
		for i, pt := range f.Points {
			out = append(out, sdk.TimestampedMetric{Timestamp: pt.Time, Value: values[i]})
		}
		if len(f.Warnings) > 0 {
			a.log.Debug("forecast warnings", "query", query, "model", f.Model, "warnings", f.Warnings)
		}
	}
	a.log.Trace("query answered", "query", query, "points", len(out))
	return out, nil
}

// QueryMultiple satisfies apm.Looker: one answer, as Query gives it.
func (a *APM) QueryMultiple(query string, r sdk.TimeRange) ([]sdk.TimestampedMetrics, error) {
	m, err := a.Query(query, r)
	if err != nil {
		return nil, err
	}
	return []sdk.TimestampedMetrics{m}, nil
}

// usageStep is the finest whole-minute step at which a window fits in one
// series answer.
func usageStep(window time.Duration) time.Duration {
	step := usageMinStep
	if n := window / usageMaxPoints; n > step {
		step = (n + time.Minute - 1).Truncate(time.Minute)
	}
	return step
}
