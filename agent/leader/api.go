package leader

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/foresight-nomad/foresight/forecast"
	"github.com/foresight-nomad/foresight/leaderapi"
	"github.com/foresight-nomad/foresight/profiles"
	"github.com/foresight-nomad/foresight/telemetry"
)

// API limits and defaults.
const (
	defaultSeriesWindow  = 6 * time.Hour
	defaultForecastStep  = 5 * time.Minute
	defaultHorizon       = time.Hour
	defaultHistory       = 14 * 24 * time.Hour
	maxPoints            = 20000
	defaultQuantileLevel = "0.5,0.9,0.95,0.99"
)

// leaderAPI serves the leader's HTTP API from its state.
type leaderAPI struct {
	st   *leaderState
	auth *authorizer
}

func badRequest(format string, args ...any) error {
	return leaderapi.Errorf(http.StatusBadRequest, format, args...)
}

func notFound(format string, args ...any) error {
	return leaderapi.Errorf(http.StatusNotFound, format, args...)
}

func (l *leaderAPI) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { leaderapi.WriteJSON(w, l.status(), nil) })
	mux.HandleFunc("GET /v1/groups", func(w http.ResponseWriter, r *http.Request) {
		leaderapi.WriteJSON(w, readable(r, l.groups(), func(g leaderapi.GroupSummary) string { return g.Group }), nil)
	})
	mux.HandleFunc("GET /v1/group/{ns}/{job}/{group}", func(w http.ResponseWriter, r *http.Request) {
		v, err := l.group(groupOf(r))
		leaderapi.WriteJSON(w, v, err)
	})
	mux.HandleFunc("GET /v1/group/{ns}/{job}/{group}/series", func(w http.ResponseWriter, r *http.Request) {
		v, err := l.series(groupOf(r), r)
		leaderapi.WriteJSON(w, v, err)
	})
	mux.HandleFunc("GET /v1/group/{ns}/{job}/{group}/forecast", func(w http.ResponseWriter, r *http.Request) {
		v, err := l.forecast(groupOf(r), r)
		leaderapi.WriteJSON(w, v, err)
	})
	mux.HandleFunc("GET /v1/decisions", func(w http.ResponseWriter, r *http.Request) {
		leaderapi.WriteJSON(w, readable(r, l.st.decisions.List(), decisionGroup), nil)
	})
	mux.HandleFunc("GET /v1/plan", func(w http.ResponseWriter, r *http.Request) {
		if l.st.plan == nil {
			leaderapi.WriteJSON(w, nil, leaderapi.Errorf(http.StatusServiceUnavailable, "%s", "the leader is not deciding yet"))
			return
		}
		decisions, err := l.st.plan(r.Context())
		decisions = readable(r, decisions, decisionGroup)
		leaderapi.WriteJSON(w, decisions, err)
	})
	mux.HandleFunc("POST /v1/pause", func(w http.ResponseWriter, r *http.Request) { l.setPaused(w, r, true) })
	mux.HandleFunc("POST /v1/resume", func(w http.ResponseWriter, r *http.Request) { l.setPaused(w, r, false) })
	registerDashboard(mux, l.st, l.auth)
	l.registerScale(mux)
}

func groupOf(r *http.Request) string {
	return r.PathValue("ns") + "/" + r.PathValue("job") + "/" + r.PathValue("group")
}

func (l *leaderAPI) status() leaderapi.Status {
	st := l.st
	stats := st.store.Stats()
	out := leaderapi.Status{
		Now:     st.clock.Now(),
		Leader:  st.self,
		Paused:  st.pause.Paused(),
		Agents:  st.agents(),
		Groups:  len(st.store.Groups()),
		Series:  stats.Series,
		Samples: stats.Samples,
	}
	if t, ok := st.freshest(); ok {
		out.FreshestSample = &t
	}
	return out
}

func (l *leaderAPI) groups() []leaderapi.GroupSummary {
	out := []leaderapi.GroupSummary{}
	for _, g := range l.st.store.Groups() {
		out = append(out, leaderapi.GroupSummary{Group: g, Metrics: l.st.store.Metrics(g)})
	}
	return out
}

func (l *leaderAPI) group(g string) (leaderapi.GroupView, error) {
	metrics := l.st.store.Metrics(g)
	if len(metrics) == 0 {
		return leaderapi.GroupView{}, notFound("no telemetry for group %q", g)
	}
	v := leaderapi.GroupView{Group: g, Metrics: metrics, Affinity: l.st.profiles.Scores(g)}
	if l.st.prov != nil {
		v.Sources, v.Unavailable = l.st.prov.of(g)
	}
	if p, ok := l.st.profiles.Profile(g); ok {
		v.Profile = &p
	}
	if v.Affinity == nil {
		v.Affinity = []profiles.Score{}
	}
	now := l.st.clock.Now()
	for _, m := range metrics {
		v.History = append(v.History, l.history(g, m, now.Add(-defaultHistory), now)...)
	}
	return v, nil
}

// history says where a series' points over [from, to) came from; nothing
// when the store cannot tell.
func (l *leaderAPI) history(g, metric string, from, to time.Time) []leaderapi.HistorySource {
	spans, step, err := l.st.store.Provenance(g, metric, from, to)
	if err != nil {
		return nil
	}
	var out []leaderapi.HistorySource
	for _, sp := range spans {
		out = append(out, leaderapi.HistorySource{Metric: metric, Source: sp.Source, From: sp.From, To: sp.To, Points: sp.Points, Step: step.String()})
	}
	return out
}

func (l *leaderAPI) series(g string, r *http.Request) (leaderapi.SeriesResponse, error) {
	q := r.URL.Query()
	metric := q.Get("metric")
	if metric == "" {
		return leaderapi.SeriesResponse{}, badRequest("metric is required, e.g. ?metric=cpu_mhz")
	}
	now := l.st.clock.Now()
	to, err := timeParam(q.Get("to"), now)
	if err != nil {
		return leaderapi.SeriesResponse{}, badRequest("to: %v", err)
	}
	from, err := timeParam(q.Get("from"), to.Add(-defaultSeriesWindow))
	if err != nil {
		return leaderapi.SeriesResponse{}, badRequest("from: %v", err)
	}
	if !from.Before(to) {
		return leaderapi.SeriesResponse{}, badRequest("from (%s) must be before to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	step, err := durationParam(q.Get("step"), max(time.Minute, to.Sub(from)/360))
	if err != nil {
		return leaderapi.SeriesResponse{}, badRequest("step: %v", err)
	}
	if to.Sub(from)/step > maxPoints {
		return leaderapi.SeriesResponse{}, badRequest("%s at a step of %s is more than %d points", to.Sub(from), step, maxPoints)
	}
	pts, err := l.st.store.Series(g, metric, from, to, step)
	if err != nil {
		return leaderapi.SeriesResponse{}, notFound("%v", err)
	}
	return leaderapi.SeriesResponse{Group: g, Metric: metric, Step: step.String(), Points: pts}, nil
}

func (l *leaderAPI) forecast(g string, r *http.Request) (leaderapi.ForecastResponse, error) {
	q := r.URL.Query()
	metric := q.Get("metric")
	if metric == "" {
		return leaderapi.ForecastResponse{}, badRequest("metric is required, e.g. ?metric=cpu_mhz")
	}
	horizon, err := durationParam(q.Get("horizon"), defaultHorizon)
	if err != nil {
		return leaderapi.ForecastResponse{}, badRequest("horizon: %v", err)
	}
	step, err := durationParam(q.Get("step"), defaultForecastStep)
	if err != nil {
		return leaderapi.ForecastResponse{}, badRequest("step: %v", err)
	}
	levels, names, err := quantileParam(cmp.Or(q.Get("quantiles"), defaultQuantileLevel))
	if err != nil {
		return leaderapi.ForecastResponse{}, badRequest("quantiles: %v", err)
	}
	steps := int((horizon + step - 1) / step)
	if steps > maxPoints {
		return leaderapi.ForecastResponse{}, badRequest("horizon %s at a step of %s is more than %d points", horizon, step, maxPoints)
	}
	now := l.st.clock.Now().Truncate(step)
	pts, err := l.st.store.Series(g, metric, now.Add(-defaultHistory), now, step)
	if err != nil {
		return leaderapi.ForecastResponse{}, notFound("%v", err)
	}
	grid, err := gridOf(pts, step)
	if err != nil {
		return leaderapi.ForecastResponse{}, leaderapi.Errorf(http.StatusUnprocessableEntity, "%s", fmt.Sprintf("group %q metric %s: %v", g, metric, err))
	}
	// The history may be coarser than asked (see gridOf): forecast at its step.
	step = grid.Step
	steps = int((horizon + step - 1) / step)
	res, err := forecast.Predict(grid, forecast.Options{Step: step, Horizon: steps}, levels, nil)
	if err != nil {
		return leaderapi.ForecastResponse{}, leaderapi.Errorf(http.StatusUnprocessableEntity, "%s", fmt.Sprintf("forecast %q %s: %v", g, metric, err))
	}
	out := leaderapi.ForecastResponse{Group: g, Metric: metric, Step: step.String(), Model: res.Fitted.Model, Reason: res.Fitted.Reason, Warnings: res.Fitted.Warnings,
		History: l.history(g, metric, now.Add(-defaultHistory), now)}
	for i, t := range res.Times {
		p := leaderapi.ForecastPoint{Time: t, Mean: res.Forecast.Mean[i], Quantiles: map[string]float64{}}
		for j, name := range names {
			p.Quantiles[name] = res.Forecast.Quantiles[j][i]
		}
		out.Points = append(out.Points, p)
	}
	return out, nil
}

// gridOf lays store points on a regular grid from the first point with
// data, each at its own time, gaps as NaN. The store widens a step finer
// than the tier it reads (a long history comes from the 5-minute tier), so
// the grid's step is the larger of step and the points' spacing: callers
// forecast at grid.Step.
func gridOf(pts []telemetry.Point, step time.Duration) (forecast.Grid, error) {
	var data []telemetry.Point
	for _, p := range pts {
		if p.Slots > 0 {
			data = append(data, p)
		}
	}
	if len(data) == 0 {
		return forecast.Grid{}, errors.New("no history to forecast from")
	}
	width := time.Duration(0)
	for i := 1; i < len(data); i++ {
		if d := data[i].Time.Sub(data[i-1].Time); d > 0 && (width == 0 || d < width) {
			width = d
		}
	}
	g := forecast.Grid{Start: data[0].Time, Step: max(step, width)}
	for _, p := range data {
		i := int(p.Time.Sub(g.Start) / g.Step)
		for len(g.Values) < i {
			g.Values = append(g.Values, math.NaN())
		}
		if i == len(g.Values) {
			g.Values = append(g.Values, p.Mean)
		}
	}
	return g, nil
}

func (l *leaderAPI) setPaused(w http.ResponseWriter, r *http.Request, paused bool) {
	if err := l.st.pause.Set(r.Context(), paused); err != nil {
		leaderapi.WriteJSON(w, nil, err)
		return
	}
	leaderapi.WriteJSON(w, leaderapi.PauseResponse{Paused: paused}, nil)
}

func timeParam(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if secs, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(secs, 0).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor epoch seconds", s)
}

func durationParam(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration such as \"5m\"", s)
	}
	return d, nil
}

// quantileParam parses "0.5,0.95" into levels and their names ("p50", "p95").
func quantileParam(s string) ([]float64, []string, error) {
	var levels []float64
	var names []string
	for _, part := range strings.Split(s, ",") {
		q, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
		if err != nil || q <= 0 || q >= 1 {
			return nil, nil, fmt.Errorf("%q is not a level between 0 and 1, such as 0.95", part)
		}
		levels = append(levels, q)
		names = append(names, forecast.QuantileName(q))
	}
	return levels, names, nil
}
