// Package dashboard renders Foresight's web dashboard: HTML pages with
// server-drawn SVG charts, from plain data. It knows nothing of the leader;
// the agent gathers the data and this package draws it, so every page reads
// without JavaScript and refreshes itself with a meta refresh.
package dashboard

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/url"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Assets are the dashboard's static files (its stylesheet), rooted so that
// "style.css" is at the top.
func Assets() fs.FS {
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// Page is what every page shows in its frame.
type Page struct {
	// Title names the page.
	Title string
	// Base is the path the dashboard is served under, e.g. "/ui".
	Base string
	// Now is the leader's time (sim's in a demo); Refresh is the seconds
	// between reloads, none when 0.
	Now     time.Time
	Refresh int
	Leader  string
	Paused  bool
	// LoggedIn says the pages are shown for a token the viewer gave at
	// the login form, which the page offers to forget.
	LoggedIn bool
}

// Overview is the dashboard's front page.
type Overview struct {
	Page
	Agents, Groups, Series int
	Samples                int64
	Freshest               *time.Time
	// Platforms hold one capacity chart each, with one line per class.
	Platforms []PlatformCapacity
	Classes   []ClassRow
	GroupRows []GroupRow
	// Decisions are the latest decisions, newest first.
	Decisions []DecisionRow
}

// PlatformCapacity is the capacity of one platform's classes over time.
type PlatformCapacity struct {
	Platform string
	Chart    LineChart
}

// ClassRow is one resource class now.
type ClassRow struct {
	ID, Platform           string
	Nodes                  int
	CPUMHz, FreeCPUMHz     float64
	MemoryMB, FreeMemoryMB float64
}

// GroupRow is one group in the overview's list.
type GroupRow struct {
	Group string
	// Decisions counts the group's decisions kept; Last is the newest's
	// one-line summary.
	Decisions int
	Last      string
}

// DecisionRow is one decision as the feeds show it.
type DecisionRow struct {
	Time    time.Time
	Group   string
	Mode    string
	Outcome string // "written", "held", "error"
	Held    string
	Error   string
	Changes []string
	Reasons []string
}

// GroupPage is one group's page.
type GroupPage struct {
	Page
	Group  string
	Metric string
	// Metrics are the group's metrics, each a link to its chart.
	Metrics []string
	Band    BandChart
	// Model and Reason say how the forecast was made; ForecastError why
	// there is none.
	Model, Reason string
	Warnings      []string
	ForecastError string
	// History says where the forecast's history came from, one line per
	// source.
	History []string
	Profile []KeyValue
	// Telemetry says per metric how the agents read it, and why a metric
	// some tasks lack is missing rather than zero.
	Telemetry []KeyValue
	Affinity  []Bar
	Decisions []DecisionRow
}

// KeyValue is one line of a definition list.
type KeyValue struct{ Key, Value string }

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"bars":  BarsSVG,
	"value": FormatValue,
	"pct": func(part, whole float64) string {
		if whole <= 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f%%", 100*part/whole)
	},
	"used": func(total, free float64) float64 { return total - free },
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") },
	"clock": func(t time.Time) string {
		return t.UTC().Format("Jan 2 15:04")
	},
	"color": Color,
	"count": func(n int64) string { return FormatValue(float64(n), "") },
	"feed": func(base string, items []DecisionRow) any {
		return struct {
			Base  string
			Items []DecisionRow
		}{base, items}
	},
	"path": groupPath,
	"join": strings.Join,
	"plural": func(n int, word string) string {
		return fmt.Sprintf("%d %s%s", n, word, map[bool]string{true: "", false: "s"}[n == 1])
	},
}).ParseFS(templateFS, "templates/*.html"))

// groupPath is the group page's path below base.
func groupPath(base, group string) string {
	parts := strings.SplitN(group, "/", 3)
	for i := range parts {
		parts[i] = url.PathEscape(parts[i])
	}
	return base + "/group/" + strings.Join(parts, "/")
}

// RenderOverview writes the front page.
func RenderOverview(w io.Writer, o Overview) error {
	return pages.ExecuteTemplate(w, "overview.html", o)
}

// RenderGroup writes a group's page.
func RenderGroup(w io.Writer, g GroupPage) error {
	return pages.ExecuteTemplate(w, "group.html", g)
}

// RenderLogin writes the login form: a Nomad ACL token, posted once and
// kept in a cookie. msg says why the last one was refused, if it was.
func RenderLogin(w io.Writer, p Page, msg string) error {
	return pages.ExecuteTemplate(w, "login.html", struct {
		Page
		Message string
	}{p, msg})
}

// RenderError writes a page that explains why there is nothing to show.
func RenderError(w io.Writer, p Page, title, msg string) error {
	return pages.ExecuteTemplate(w, "error.html", struct {
		Page
		Title, Message string
	}{p, title, msg})
}
