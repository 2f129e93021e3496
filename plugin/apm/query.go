package apm

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/foresight-nomad/foresight/forecast"
	"github.com/foresight-nomad/foresight/telemetry"
)

// Query kinds foresight-apm answers.
const (
	QueryForecast = "forecast"
	QueryUsage    = "usage"
)

// QueryForms lists the query forms foresight-apm accepts, for errors.
const QueryForms = "forecast:<namespace>/<job>/<group>:<metric>:<quantile>:<horizon> " +
	"(e.g. forecast:default/web/web:cpu_mhz:0.9:30m) or usage:<namespace>/<job>/<group>:<metric> " +
	"(e.g. usage:default/web/web:cpu_mhz)"

// maxQueryHorizon bounds a forecast query's horizon.
const maxQueryHorizon = 14 * 24 * time.Hour

// Query is a parsed foresight-apm query.
type Query struct {
	// Kind is QueryForecast or QueryUsage.
	Kind string
	// Group is "namespace/job/group".
	Group string
	// Metric is a Foresight metric name such as cpu_mhz.
	Metric string
	// Quantile and Horizon are set for forecasts.
	Quantile float64
	Horizon  time.Duration
}

// String renders q in the form ParseQuery reads.
func (q Query) String() string {
	if q.Kind == QueryForecast {
		return fmt.Sprintf("%s:%s:%s:%s:%s", q.Kind, q.Group, q.Metric, strconv.FormatFloat(q.Quantile, 'g', -1, 64), q.Horizon)
	}
	return fmt.Sprintf("%s:%s:%s", q.Kind, q.Group, q.Metric)
}

// ParseQuery parses a foresight-apm query. A bad query gets an error that
// says what is wrong and shows the accepted forms.
func ParseQuery(s string) (Query, error) {
	q, err := parseQuery(s)
	if err != nil {
		return Query{}, fmt.Errorf("query %q: %v; accepted forms: %s", s, err, QueryForms)
	}
	return q, nil
}

func parseQuery(s string) (Query, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	var q Query
	q.Kind = parts[0]
	switch q.Kind {
	case QueryUsage:
		if len(parts) != 3 {
			return Query{}, fmt.Errorf("a usage query has 3 parts separated by ':', not %d", len(parts))
		}
	case QueryForecast:
		if len(parts) != 5 {
			return Query{}, fmt.Errorf("a forecast query has 5 parts separated by ':', not %d", len(parts))
		}
	default:
		return Query{}, fmt.Errorf("unknown kind %q (want %s or %s)", q.Kind, QueryForecast, QueryUsage)
	}
	if _, err := telemetry.ParseGroup(parts[1]); err != nil {
		return Query{}, err
	}
	q.Group = parts[1]
	if err := telemetry.CheckMetric(parts[2]); err != nil {
		return Query{}, err
	}
	q.Metric = parts[2]
	if q.Kind == QueryUsage {
		return q, nil
	}
	v, err := strconv.ParseFloat(parts[3], 64)
	if err != nil || !(v > 0 && v < 1) {
		return Query{}, fmt.Errorf("quantile %q is not a level between 0 and 1 such as 0.9", parts[3])
	}
	q.Quantile = v
	h, err := forecast.ParseSpan(parts[4])
	if err != nil || h <= 0 || h > maxQueryHorizon {
		return Query{}, fmt.Errorf("horizon %q is not a duration between 1s and 14d such as 30m", parts[4])
	}
	q.Horizon = h
	return q, nil
}

// finite says whether v is a usable number.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
