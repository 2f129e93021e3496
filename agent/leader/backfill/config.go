// Package backfill gives a new leader the past it did not see: it reads a
// group's usage from a Prometheus-compatible HTTP API (Prometheus, Thanos,
// Mimir, VictoriaMetrics) that scraped Nomad's allocation metrics, sums it
// per group as the agents' samples are summed, and writes it into the
// store's downsampled tiers, where the agents' own samples win.
package backfill

import (
	"cmp"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/foresight-nomad/foresight/internal/settings"
)

// EnvAddress is the environment variable that names the Prometheus API
// when the config file does not.
const EnvAddress = "FORESIGHT_PROMETHEUS_ADDR"

// Defaults of the prometheus block.
const (
	// DefaultHistory is how far back a series is backfilled: the
	// forecast's history window.
	DefaultHistory = 14 * 24 * time.Hour
	// DefaultTimeout bounds one query.
	DefaultTimeout = 30 * time.Second
)

// Config is the leader's `prometheus` block: where Nomad's allocation
// metrics can be read back, and how.
type Config struct {
	// Address is the API's base URL, the part before /api/v1 (for Mimir
	// often ending in /prometheus); default FORESIGHT_PROMETHEUS_ADDR.
	// Empty turns backfill off.
	Address string `hcl:"address,optional"`
	// JobLabel is the label that holds the Nomad job: "exported_job" when
	// Prometheus kept its own scrape job in "job" (the default scrape
	// config), "job" with honor_labels. Empty tries exported_job, then job.
	JobLabel string `hcl:"job_label,optional"`
	// History is how far back a series is backfilled.
	History string `hcl:"history,optional"`
	// Timeout bounds one query.
	Timeout string `hcl:"timeout,optional"`
	// Headers are sent with every query: Authorization, X-Scope-OrgID, …
	Headers map[string]string `hcl:"headers,optional"`
}

// Settings is a Config resolved; a zero Address means backfill is off.
type Settings struct {
	Address  string
	JobLabel string
	History  time.Duration
	Timeout  time.Duration
	Headers  map[string]string
}

// Enabled reports whether there is an API to backfill from.
func (s Settings) Enabled() bool { return s.Address != "" }

// Resolve applies defaults and the environment and checks the block; a
// nil block is all defaults. Errors name the setting.
func (c *Config) Resolve() (Settings, error) {
	if c == nil {
		c = &Config{}
	}
	s := Settings{Address: cmp.Or(c.Address, os.Getenv(EnvAddress)), JobLabel: c.JobLabel, Headers: c.Headers}
	if s.Address != "" {
		u, err := url.Parse(s.Address)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return s, fmt.Errorf("prometheus.address: %q is not an http(s) URL such as \"http://prometheus:9090\"", s.Address)
		}
	}
	switch s.JobLabel {
	case "", "exported_job", "job":
	default:
		return s, fmt.Errorf("prometheus.job_label must be \"exported_job\" or \"job\", not %q", s.JobLabel)
	}
	var err error
	if s.History, err = settings.Duration("prometheus.history", c.History, DefaultHistory); err != nil {
		return s, err
	}
	if s.Timeout, err = settings.Duration("prometheus.timeout", c.Timeout, DefaultTimeout); err != nil {
		return s, err
	}
	return s, nil
}
