// Package plugin holds Foresight's Nomad Autoscaler plugins: a strategy that
// scales on a forecast (foresight-strategy), an APM that answers queries
// from the Foresight leader (foresight-apm), and a target that hands scaling
// actions to the leader (foresight-target). Each is served as its own binary
// from cmd/foresight-*, as the autoscaler's plugin_dir expects.
package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/foresight-nomad/foresight/agent/election"
	"github.com/foresight-nomad/foresight/forecast"
)

// Config keys shared by the plugins that talk to the leader.
const (
	// ConfigAddress is the leader's HTTP URL (any agent will do: standbys
	// redirect). Default: FORESIGHT_ADDR, else the Consul election key.
	ConfigAddress = "address"
	// ConfigConsulAddress is the Consul agent used to find the leader when
	// no address is given. Default: CONSUL_HTTP_ADDR.
	ConfigConsulAddress = "consul_address"
	// ConfigConsulToken is the Consul ACL token. Default: CONSUL_HTTP_TOKEN.
	ConfigConsulToken = "consul_token"
	// ConfigLeaderKey is the Consul KV key of the leader lock.
	ConfigLeaderKey = "leader_key"
)

// leaderTimeout bounds one request to the leader.
const leaderTimeout = 15 * time.Second

// Leader is a small client of the Foresight leader's HTTP API.
type Leader struct {
	fixed  string            // base URL when configured
	consul *consulapi.Client // finds the leader otherwise
	key    string            // the election key
	http   *http.Client      // follows the standbys' redirects
}

// NewLeader builds a leader client from plugin config: ConfigAddress, else
// FORESIGHT_ADDR, else the leader named in the Consul election key
// (ConfigConsulAddress, ConfigConsulToken and ConfigLeaderKey, with the
// Consul client's usual environment variables as defaults).
func NewLeader(config map[string]string) (*Leader, error) {
	l := &Leader{http: &http.Client{Timeout: leaderTimeout}, key: config[ConfigLeaderKey]}
	addr := config[ConfigAddress]
	if addr == "" {
		addr = os.Getenv("FORESIGHT_ADDR")
	}
	if addr != "" {
		u, err := url.Parse(addr)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%s %q is not an http(s) URL such as http://127.0.0.1:7460", ConfigAddress, addr)
		}
		l.fixed = strings.TrimSuffix(addr, "/")
		return l, nil
	}
	cc := consulapi.DefaultConfig()
	if a := config[ConfigConsulAddress]; a != "" {
		cc.Address = a
	}
	if t := config[ConfigConsulToken]; t != "" {
		cc.Token = t
	}
	c, err := consulapi.NewClient(cc)
	if err != nil {
		return nil, fmt.Errorf("consul client to find the Foresight leader: %w", err)
	}
	l.consul = c
	return l, nil
}

// base returns the URL of the leader's API.
func (l *Leader) base(ctx context.Context) (string, error) {
	if l.fixed != "" {
		return l.fixed, nil
	}
	leader, ok, err := election.Current(ctx, l.consul, l.key)
	if err != nil {
		return "", fmt.Errorf("find the Foresight leader (set %s or FORESIGHT_ADDR to skip Consul): %w", ConfigAddress, err)
	}
	if !ok {
		return "", errors.New("no Foresight leader is elected (is any agent running?)")
	}
	return strings.TrimSuffix(leader.HTTP, "/"), nil
}

// StatusError is an answer of the leader other than 200.
type StatusError struct {
	Code int
	Msg  string
}

func (e *StatusError) Error() string { return fmt.Sprintf("leader answered %d: %s", e.Code, e.Msg) }

// call sends a request to the leader and decodes its JSON answer into out.
func (l *Leader) call(ctx context.Context, method, path string, in, out any) error {
	base, err := l.base(ctx)
	if err != nil {
		return err
	}
	var body io.Reader
	var raw []byte
	if in != nil {
		if raw, err = json.Marshal(in); err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := l.http.Do(req)
	if err != nil {
		return fmt.Errorf("foresight leader: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("foresight leader: %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return &StatusError{Code: resp.StatusCode, Msg: e.Error}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("foresight leader: %s %s: bad answer: %w", method, path, err)
	}
	return nil
}

// groupPath is the API path of a group, "namespace/job/group".
func groupPath(group string) (string, error) {
	parts := strings.Split(group, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", fmt.Errorf("group %q is not namespace/job/group", group)
	}
	return "/v1/group/" + url.PathEscape(parts[0]) + "/" + url.PathEscape(parts[1]) + "/" + url.PathEscape(parts[2]), nil
}

// SeriesPoint is one step of a group's demand, as the leader serves it.
type SeriesPoint struct {
	Time  time.Time
	Mean  float64
	Slots int
}

// Series fetches a group's demand for a metric from from to to at a step.
func (l *Leader) Series(ctx context.Context, group, metric string, from, to time.Time, step time.Duration) ([]SeriesPoint, error) {
	p, err := groupPath(group)
	if err != nil {
		return nil, err
	}
	q := url.Values{"metric": {metric}, "from": {from.UTC().Format(time.RFC3339)}, "to": {to.UTC().Format(time.RFC3339)}, "step": {step.String()}}
	var out struct{ Points []SeriesPoint }
	if err := l.call(ctx, http.MethodGet, p+"/series?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return out.Points, nil
}

// LeaderForecast is the leader's forecast of one quantile of a group's
// demand.
type LeaderForecast struct {
	Model, Reason string
	Warnings      []string
	// Times and Values are the start of each step and its quantile.
	Times  []time.Time
	Values []float64
}

// Forecast asks the leader for the q quantile of a group's demand for a
// metric over the next horizon, at a step.
func (l *Leader) Forecast(ctx context.Context, group, metric string, q float64, horizon, step time.Duration) (*LeaderForecast, error) {
	p, err := groupPath(group)
	if err != nil {
		return nil, err
	}
	qs := url.Values{"metric": {metric}, "horizon": {horizon.String()}, "step": {step.String()},
		"quantiles": {strconv.FormatFloat(q, 'g', -1, 64)}}
	var out struct {
		Model, Reason string
		Warnings      []string
		Points        []struct {
			Time      time.Time
			Quantiles map[string]float64
		}
	}
	if err := l.call(ctx, http.MethodGet, p+"/forecast?"+qs.Encode(), nil, &out); err != nil {
		return nil, err
	}
	name := forecast.QuantileName(q)
	f := &LeaderForecast{Model: out.Model, Reason: out.Reason, Warnings: out.Warnings}
	for _, pt := range out.Points {
		v, ok := pt.Quantiles[name]
		if !ok {
			return nil, fmt.Errorf("foresight leader: forecast of %s %s has no %s", group, metric, name)
		}
		f.Times = append(f.Times, pt.Time)
		f.Values = append(f.Values, v)
	}
	if len(f.Values) == 0 {
		return nil, fmt.Errorf("foresight leader: empty forecast of %s %s", group, metric)
	}
	return f, nil
}

// ScaleState is `GET /v1/group/{ns}/{job}/{group}/scale`.
type ScaleState struct {
	Count int64 `json:"count"`
	Ready bool  `json:"ready"`
	// LastEvent is the unix nanoseconds of the last count change Foresight
	// or Nomad made, 0 if none.
	LastEvent int64  `json:"last_event"`
	Mode      string `json:"mode"`
	// Hold says why the group's Foresight policy cannot be read, if so.
	Hold string `json:"hold,omitempty"`
}

// ScaleRequest is the body of `POST /v1/group/{ns}/{job}/{group}/scale`.
type ScaleRequest struct {
	Count  int64          `json:"count"`
	Reason string         `json:"reason"`
	Error  bool           `json:"error"`
	Meta   map[string]any `json:"meta,omitempty"`
}

// leaderCache keeps one leader client per leader address, Consul address,
// Consul token and leader key, so that a plugin called on every evaluation
// reuses its clients and their connections.
type leaderCache struct {
	mu sync.Mutex
	m  map[string]*Leader
}

func (c *leaderCache) get(config map[string]string) (*Leader, error) {
	key := strings.Join([]string{config[ConfigAddress], config[ConfigConsulAddress], config[ConfigConsulToken], config[ConfigLeaderKey]}, "\x00")
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.m[key]; ok {
		return l, nil
	}
	l, err := NewLeader(config)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*Leader{}
	}
	c.m[key] = l
	return l, nil
}

// ScaleResult is the leader's answer to a ScaleRequest.
type ScaleResult struct {
	CountBefore int64    `json:"count_before"`
	Count       int64    `json:"count"`
	Written     bool     `json:"written"`
	Mode        string   `json:"mode"`
	Held        string   `json:"held,omitempty"` // why the count was held, if it was
	Reasons     []string `json:"reasons"`
}

// ScaleState reads a group's count, readiness, last change and mode.
func (l *Leader) ScaleState(ctx context.Context, group string) (ScaleState, error) {
	p, err := groupPath(group)
	if err != nil {
		return ScaleState{}, err
	}
	var out ScaleState
	err = l.call(ctx, http.MethodGet, p+"/scale", nil, &out)
	return out, err
}

// Scale hands a scaling action for a group to the leader.
func (l *Leader) Scale(ctx context.Context, group string, req ScaleRequest) (ScaleResult, error) {
	p, err := groupPath(group)
	if err != nil {
		return ScaleResult{}, err
	}
	var out ScaleResult
	err = l.call(ctx, http.MethodPost, p+"/scale", req, &out)
	return out, err
}
