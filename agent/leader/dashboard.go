package leader

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/foresight-nomad/foresight/agent/leader/dashboard"
	"github.com/foresight-nomad/foresight/clock"
	"github.com/foresight-nomad/foresight/forecast"
	"github.com/foresight-nomad/foresight/leaderapi"
	"github.com/foresight-nomad/foresight/profiles"
	"github.com/foresight-nomad/foresight/telemetry"
)

// Dashboard settings.
const (
	// dashboardBase is where the dashboard is served.
	dashboardBase = "/ui"
	// dashboardRefresh is how often a page reloads itself, in seconds.
	dashboardRefresh = 5
	// capacityRingSize is how many capacity snapshots the leader keeps:
	// at one a decision interval, four hours by default.
	capacityRingSize = 240
	// feedSize is how many decisions the overview lists.
	feedSize = 25
	// groupHistory is how much of a group's usage its page charts and
	// groupHorizon how far its forecast looks, at groupStep.
	groupHistory = 3 * time.Hour
	groupHorizon = time.Hour
	groupStep    = time.Minute
	// forecastHistory is what the group page forecasts from: as much as
	// the store keeps at groupStep (its 1-minute tier holds three days), so
	// that every point read is one step of the grid.
	forecastHistory = 2 * 24 * time.Hour
)

// CapacitySnapshot is every class's capacity at one time.
type CapacitySnapshot struct {
	Time    time.Time
	Classes []profiles.Class
}

// CapacityLog keeps the latest capacity snapshots, oldest first, so the
// dashboard can chart how each class's capacity moved.
type CapacityLog struct {
	ring ring[CapacitySnapshot]
}

// Add records a snapshot, dropping the oldest once the ring is full.
func (l *CapacityLog) Add(s CapacitySnapshot) { l.ring.add(s, capacityRingSize) }

// List returns the snapshots kept, oldest first.
func (l *CapacityLog) List() []CapacitySnapshot { return l.ring.all() }

// Run records the classes every interval until ctx ends: what the
// profiler last read of the nodes.
func (l *CapacityLog) Run(ctx context.Context, clk clock.Clock, interval time.Duration, classes func() []profiles.Class) {
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-clk.After(interval):
			if cs := classes(); len(cs) > 0 {
				l.Add(CapacitySnapshot{Time: now, Classes: cs})
			}
		}
	}
}

// registerDashboard serves the dashboard on the leader's mux.
func registerDashboard(mux *http.ServeMux, st *leaderState, auth *authorizer) {
	d := &dashboardHandler{st: st, api: &leaderAPI{st: st}, auth: auth}
	mux.Handle("GET "+dashboardBase+"/assets/", http.StripPrefix(dashboardBase+"/assets/", http.FileServerFS(dashboard.Assets())))
	mux.HandleFunc("GET "+dashboardBase+"/{$}", d.overview)
	mux.HandleFunc("GET "+dashboardBase+"/group/{ns}/{job}/{group}", d.group)
	mux.HandleFunc("GET "+dashboardBase+"/login", d.loginForm)
	mux.HandleFunc("POST "+dashboardBase+"/login", d.login)
	mux.HandleFunc("GET "+dashboardBase+"/logout", d.logout)
}

// dashboardHandler gathers the leader's state into the dashboard's pages.
type dashboardHandler struct {
	st   *leaderState
	api  *leaderAPI
	auth *authorizer
}

// loginForm asks for a Nomad ACL token.
func (d *dashboardHandler) loginForm(w http.ResponseWriter, r *http.Request) {
	p := d.page("Log in")
	p.Refresh = 0
	render(w, http.StatusOK, func(b *bytes.Buffer) error { return dashboard.RenderLogin(b, p, "") })
}

// login checks the token posted through Nomad and keeps it in a cookie
// that scripts cannot read (HttpOnly), that no other site's page can make
// the browser send (SameSite=Strict), that is sent only to the dashboard
// (Path) and, under HTTPS, only over it (Secure).
func (d *dashboardHandler) login(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimSpace(r.PostFormValue("token"))
	acl, err := d.auth.resolve(r.Context(), token)
	if err == nil && !acl.IsManagement() && !acl.Grants() {
		err = leaderapi.Errorf(http.StatusForbidden, "%s", msgPermissionDenied)
	}
	if token == "" || err != nil {
		msg := "That token was refused: " + cmp.Or(errorText(err), "no token was given") + "."
		p := d.page("Log in")
		p.Refresh = 0
		render(w, http.StatusUnauthorized, func(b *bytes.Buffer) error { return dashboard.RenderLogin(b, p, msg) })
		return
	}
	http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: token, Path: dashboardBase + "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, dashboardBase+"/", http.StatusSeeOther)
}

// logout forgets the cookie.
func (d *dashboardHandler) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: "", Path: dashboardBase + "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, dashboardBase+"/login", http.StatusSeeOther)
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// loggedIn reports whether the page is shown for the login cookie's token.
func loggedIn(r *http.Request) bool {
	_, err := r.Cookie(tokenCookie)
	return err == nil && r.Header.Get("X-Nomad-Token") == "" && r.Header.Get("Authorization") == ""
}

// renderRefusal is the page for a request the viewer's token may not make.
func renderRefusal(w http.ResponseWriter, status int, msg string) {
	p := dashboard.Page{Title: http.StatusText(status), Base: dashboardBase, LoggedIn: true}
	render(w, status, func(b *bytes.Buffer) error {
		return dashboard.RenderError(b, p, http.StatusText(status), msg)
	})
}

func (d *dashboardHandler) page(title string) dashboard.Page {
	return dashboard.Page{Title: title, Base: dashboardBase, Now: d.st.clock.Now(), Refresh: dashboardRefresh,
		Leader: d.st.self.ID, Paused: d.st.pause.Paused()}
}

// render buffers a page so that a template error becomes a clean 500.
func render(w http.ResponseWriter, status int, fn func(*bytes.Buffer) error) {
	var buf bytes.Buffer
	if err := fn(&buf); err != nil {
		http.Error(w, "render dashboard: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

func (d *dashboardHandler) overview(w http.ResponseWriter, r *http.Request) {
	status := d.api.status()
	page := d.page("Overview")
	page.LoggedIn = loggedIn(r)
	o := dashboard.Overview{
		Page:   page,
		Agents: len(status.Agents), Groups: status.Groups, Series: status.Series, Samples: status.Samples,
		Freshest: status.FreshestSample,
	}
	var snaps []CapacitySnapshot
	if d.st.capacity != nil {
		snaps = d.st.capacity.List()
	}
	o.Platforms = capacityCharts(snaps)
	for _, c := range d.st.profiles.Classes() {
		o.Classes = append(o.Classes, dashboard.ClassRow{ID: c.ID, Platform: c.Traits.Platform, Nodes: len(c.Nodes),
			CPUMHz: c.CPUMHz, FreeCPUMHz: c.FreeCPUMHz, MemoryMB: c.MemoryMB, FreeMemoryMB: c.FreeMemoryMB})
	}
	decisions := readable(r, d.st.decisions.List(), decisionGroup)
	byGroup := map[string][]leaderapi.Decision{}
	for _, dec := range decisions {
		byGroup[dec.Group] = append(byGroup[dec.Group], dec)
	}
	for _, g := range readable(r, d.st.store.Groups(), func(g string) string { return g }) {
		row := dashboard.GroupRow{Group: g, Decisions: len(byGroup[g])}
		if n := len(byGroup[g]); n > 0 {
			row.Last = summary(byGroup[g][n-1])
		}
		o.GroupRows = append(o.GroupRows, row)
	}
	o.Decisions = decisionRows(decisions, feedSize)
	render(w, http.StatusOK, func(b *bytes.Buffer) error { return dashboard.RenderOverview(b, o) })
}

func (d *dashboardHandler) group(w http.ResponseWriter, r *http.Request) {
	g := groupOf(r)
	metrics := d.st.store.Metrics(g)
	if len(metrics) == 0 {
		render(w, http.StatusNotFound, func(b *bytes.Buffer) error {
			return dashboard.RenderError(b, d.page("Not found"), "No such group", fmt.Sprintf("The leader holds no telemetry for %q.", g))
		})
		return
	}
	metric := telemetry.CPUMHz
	if m := r.URL.Query().Get("metric"); m != "" && slices.Contains(metrics, m) {
		metric = m
	}
	p := dashboard.GroupPage{Page: d.page(g), Group: g, Metric: metric, Metrics: metrics}
	p.LoggedIn = loggedIn(r)
	p.Band.Unit = unitOf(metric)
	p.Band.Now = p.Now

	if fc, err := d.forecast(g, metric, p.Now); err != nil {
		p.ForecastError = err.Error()
	} else {
		p.Model, p.Reason, p.Warnings = fc.Fitted.Model, fc.Fitted.Reason, fc.Fitted.Warnings
		for i, at := range fc.Times {
			q := fc.Forecast.Quantiles
			p.Band.Forecast = append(p.Band.Forecast, dashboard.ForecastPoint{Time: at, P50: q[0][i], P90: q[1][i], P95: q[2][i], P99: q[3][i]})
		}
	}
	for _, h := range d.api.history(g, metric, p.Now.Add(-forecastHistory), p.Now) {
		p.History = append(p.History, fmt.Sprintf("%d points at %s from %s, %s to %s", h.Points, h.Step, h.Source, h.From.Format(time.DateTime), h.To.Format(time.DateTime)))
	}
	end := p.Now.Truncate(groupStep)
	if pts, err := d.st.store.Series(g, metric, end.Add(-groupHistory), end, groupStep); err == nil {
		started := false
		for _, pt := range pts {
			if pt.Slots == 0 {
				if started {
					p.Band.Usage = append(p.Band.Usage, dashboard.Point{Time: pt.Time, Value: math.NaN()})
				}
				continue
			}
			started = true
			p.Band.Usage = append(p.Band.Usage, dashboard.Point{Time: pt.Time, Value: pt.Mean})
		}
	}

	for _, s := range d.st.profiles.Scores(g) {
		p.Affinity = append(p.Affinity, dashboard.Bar{Label: s.Class, Value: s.Value, Confidence: s.Confidence, Note: s.Reason})
	}
	if prof, ok := d.st.profiles.Profile(g); ok {
		p.Profile = []dashboard.KeyValue{
			{Key: "Observed", Value: fmt.Sprintf("%.1f allocation-hours", prof.AllocHours)},
			{Key: "Memory intensity", Value: fmt.Sprintf("%.2f× the cluster's", prof.Intensity.Memory)},
			{Key: "I/O intensity", Value: fmt.Sprintf("%.2f× the cluster's", prof.Intensity.IO)},
			{Key: "Network intensity", Value: fmt.Sprintf("%.2f× the cluster's", prof.Intensity.Network)},
			{Key: "Burstiness", Value: fmt.Sprintf("CV %.2f, peak %.2f× the mean", prof.Burstiness.CV, prof.Burstiness.PeakToMean)},
		}
		if cpu, ok := prof.Mean[telemetry.CPUMHz]; ok {
			p.Profile = append(p.Profile, dashboard.KeyValue{Key: "Mean CPU per allocation", Value: dashboard.FormatValue(cpu, "MHz")})
		}
	}
	if d.st.prov != nil {
		p.Telemetry = telemetryRows(d.st.prov.of(g))
	}
	var mine []leaderapi.Decision
	for _, dec := range d.st.decisions.List() {
		if dec.Group == g {
			mine = append(mine, dec)
		}
	}
	p.Decisions = decisionRows(mine, feedSize)
	render(w, http.StatusOK, func(b *bytes.Buffer) error { return dashboard.RenderGroup(b, p) })
}

// telemetryRows says per metric how it was read and why some tasks lack it,
// in the design's order of metrics.
func telemetryRows(sources, unavailable map[string][]string) []dashboard.KeyValue {
	var out []dashboard.KeyValue
	for _, m := range telemetry.Metrics() {
		var parts []string
		if s := sources[m]; len(s) > 0 {
			parts = append(parts, "read from "+strings.Join(s, ", "))
		}
		if u := unavailable[m]; len(u) > 0 {
			parts = append(parts, "missing: "+strings.Join(u, "; "))
		}
		if len(parts) > 0 {
			out = append(out, dashboard.KeyValue{Key: m, Value: strings.Join(parts, "; ")})
		}
	}
	return out
}

// capacityCharts draws, per platform, each class's CPU capacity and what
// allocations hold of it over the snapshots.
func capacityCharts(snaps []CapacitySnapshot) []dashboard.PlatformCapacity {
	type line struct{ capacity, used []dashboard.Point }
	// Both platforms always show: a hybrid cluster's provider side is
	// often empty until capacity is bought.
	lines := map[string]map[string]*line{"external": {}, "provider": {}} // platform → class → line
	for _, s := range snaps {
		for _, c := range s.Classes {
			platform := c.Traits.Platform
			if lines[platform] == nil {
				lines[platform] = map[string]*line{}
			}
			l := lines[platform][c.ID]
			if l == nil {
				l = &line{}
				lines[platform][c.ID] = l
			}
			l.capacity = append(l.capacity, dashboard.Point{Time: s.Time, Value: c.CPUMHz})
			l.used = append(l.used, dashboard.Point{Time: s.Time, Value: c.CPUMHz - c.FreeCPUMHz})
		}
	}
	var out []dashboard.PlatformCapacity
	for _, platform := range slices.Sorted(maps.Keys(lines)) {
		pc := dashboard.PlatformCapacity{Platform: platform, Chart: dashboard.LineChart{Unit: "MHz", Empty: "No " + platform + " nodes yet"}}
		for _, class := range slices.Sorted(maps.Keys(lines[platform])) {
			l := lines[platform][class]
			pc.Chart.Series = append(pc.Chart.Series,
				dashboard.Series{Name: class, Points: l.capacity},
				dashboard.Series{Name: class + " allocated", Points: l.used, Dashed: true})
		}
		out = append(out, pc)
	}
	return out
}

// decisionRows lists up to n decisions, newest first.
func decisionRows(list []leaderapi.Decision, n int) []dashboard.DecisionRow {
	var out []dashboard.DecisionRow
	for i := len(list) - 1; i >= 0 && len(out) < n; i-- {
		dec := list[i]
		row := dashboard.DecisionRow{Time: dec.Time, Group: dec.Group, Mode: string(dec.Result.Decision.Mode),
			Held: dec.Result.Held, Error: dec.Error, Changes: dec.Result.Changes, Reasons: dec.Result.Decision.Reasons}
		switch {
		case dec.Error != "":
			row.Outcome = "error"
		case dec.Result.Written:
			row.Outcome = "written"
		default:
			row.Outcome = "held"
		}
		if row.Held == "" && dec.Result.Decision.Hold != "" {
			row.Held = dec.Result.Decision.Hold
		}
		out = append(out, row)
	}
	return out
}

// summary is a decision in one line, for the group list.
func summary(dec leaderapi.Decision) string {
	if dec.Error != "" {
		return "error: " + dec.Error
	}
	if len(dec.Result.Changes) > 0 {
		return strings.Join(dec.Result.Changes, "; ")
	}
	return dec.Result.Decision.Hold
}

// unitOf is how a metric's values read.
func unitOf(metric string) string {
	switch {
	case metric == telemetry.CPUMHz:
		return "MHz"
	case strings.HasPrefix(metric, "mem_"):
		return "bytes"
	case strings.HasSuffix(metric, "_bps"):
		return "B/s"
	case strings.HasPrefix(metric, "psi_"):
		return "%"
	}
	return ""
}

// forecastLevels are the quantiles the group page bands.
var forecastLevels = []float64{0.5, 0.9, 0.95, 0.99}

// forecast predicts the group's metric over groupHorizon from its recent
// history.
func (d *dashboardHandler) forecast(g, metric string, now time.Time) (*forecast.Result, error) {
	end := now.Truncate(groupStep)
	pts, err := d.st.store.Series(g, metric, end.Add(-forecastHistory), end, groupStep)
	if err != nil {
		return nil, err
	}
	grid, err := gridOf(pts, groupStep)
	if err != nil {
		return nil, err
	}
	return forecast.Predict(grid, forecast.Options{Step: grid.Step, Horizon: int(groupHorizon / grid.Step)}, forecastLevels, nil)
}
