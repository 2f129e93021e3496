package apm

import (
	"strings"
	"testing"
	"time"

	"github.com/foresight-nomad/foresight/telemetry"
)

func TestParseQuery(t *testing.T) {
	good := []struct {
		in   string
		want Query
	}{
		{"usage:default/web/web:cpu_mhz", Query{Kind: QueryUsage, Group: "default/web/web", Metric: "cpu_mhz"}},
		{"forecast:prod/api/frontend:mem_rss_bytes:0.95:30m", Query{Kind: QueryForecast, Group: "prod/api/frontend", Metric: "mem_rss_bytes", Quantile: 0.95, Horizon: 30 * time.Minute}},
		{"forecast:default/batch-1/g.2:psi_cpu_some:0.5:1d", Query{Kind: QueryForecast, Group: "default/batch-1/g.2", Metric: "psi_cpu_some", Quantile: 0.5, Horizon: 24 * time.Hour}},
		{" usage:default/web/web:net_tx_bps ", Query{Kind: QueryUsage, Group: "default/web/web", Metric: "net_tx_bps"}},
	}
	for _, g := range good {
		q, err := ParseQuery(g.in)
		if err != nil {
			t.Fatalf("%q: %v", g.in, err)
		}
		if q != g.want {
			t.Fatalf("%q parsed as %+v, want %+v", g.in, q, g.want)
		}
	}
	bad := []struct{ in, want string }{
		{"", "unknown kind"},
		{"taskgroup_avg_cpu/web/web", "unknown kind"},
		{"usage:default/web:cpu_mhz", "not namespace/job/group"},
		{"usage:default//web:cpu_mhz", "not namespace/job/group"},
		{"usage:default/web/web", "3 parts"},
		{"usage:default/web/web:CPU", "unknown metric"},
		{"usage:default/web/web:", "unknown metric \"\""},
		{"forecast:default/web/web:cpu_mhz:0.9", "5 parts"},
		{"forecast:default/web/web:cpu_mhz:1.5:30m", "quantile \"1.5\""},
		{"forecast:default/web/web:cpu_mhz:0.9:soon", "horizon \"soon\""},
		{"forecast:default/web/web:cpu_mhz:0.9:0s", "horizon"},
		{"forecast:default/web/web:cpu_mhz:0.9:30d", "horizon"},
	}
	for _, b := range bad {
		_, err := ParseQuery(b.in)
		if err == nil {
			t.Fatalf("%q: no error", b.in)
		}
		if !strings.Contains(err.Error(), b.want) || !strings.Contains(err.Error(), "accepted forms: forecast:<namespace>/<job>/<group>:<metric>:<quantile>:<horizon>") {
			t.Fatalf("%q: error %q, want it to say %q and show the accepted forms", b.in, err, b.want)
		}
	}
}

// FuzzParseQuery checks that any accepted query is well formed and reads
// back the same from its own rendering, and that every refusal shows the
// accepted forms.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"usage:default/web/web:cpu_mhz",
		"forecast:default/web/web:cpu_mhz:0.9:30m",
		"forecast:ns/j/g:mem_rss_bytes:0.999:1d12h",
		"forecast:ns/j/g:x:1e-3:2w",
		"usage:a/b/c:d",
		"usage::",
		"forecast:a/b/c:d:NaN:1h",
		"forecast:a/b/c:d:0.5:-1h",
		"usage:a/b/c/d:cpu",
		"usage:é/ü/\xff:cpu_mhz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQuery(s)
		if err != nil {
			if !strings.Contains(err.Error(), QueryForms) {
				t.Fatalf("%q: error %q does not show the accepted forms", s, err)
			}
			return
		}
		if func() error { _, err := telemetry.ParseGroup(q.Group); return err }() != nil || telemetry.CheckMetric(q.Metric) != nil {
			t.Fatalf("%q: accepted a bad group or metric: %+v", s, q)
		}
		switch q.Kind {
		case QueryUsage:
			if q.Quantile != 0 || q.Horizon != 0 {
				t.Fatalf("%q: usage with a quantile or horizon: %+v", s, q)
			}
		case QueryForecast:
			if !(q.Quantile > 0 && q.Quantile < 1) || q.Horizon <= 0 || q.Horizon > maxQueryHorizon {
				t.Fatalf("%q: accepted a bad quantile or horizon: %+v", s, q)
			}
		default:
			t.Fatalf("%q: kind %q", s, q.Kind)
		}
		back, err := ParseQuery(q.String())
		if err != nil || back != q {
			t.Fatalf("%q → %q → %+v, %v; want %+v", s, q.String(), back, err, q)
		}
	})
}
