package leaderapi

import (
	"bytes"
	"cmp"
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
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/foresight-nomad/foresight/telemetry"
	"github.com/foresight-nomad/foresight/telemetry/wire"
)

// EnvAddress names the environment variable holding the leader's (or any
// agent's) HTTP URL, as NOMAD_ADDR does for Nomad.
const EnvAddress = "FORESIGHT_ADDR"

// Environment variables for the caller's credentials, in the style of
// Nomad's: the Nomad ACL token every request carries, and the files of
// TLS towards an agent whose HTTP API serves HTTPS.
const (
	EnvToken      = "NOMAD_TOKEN"
	EnvCACert     = "FORESIGHT_CACERT"
	EnvClientCert = "FORESIGHT_CLIENT_CERT"
	EnvClientKey  = "FORESIGHT_CLIENT_KEY"
)

// DefaultTimeout bounds one request when Config.Timeout is 0.
const DefaultTimeout = 30 * time.Second

// Config says how to reach the leader. The zero value finds it through
// FORESIGHT_ADDR, else the Consul election key with the Consul client's
// own environment (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN).
type Config struct {
	// Address is the HTTP URL of any agent (standbys redirect to the
	// leader); FORESIGHT_ADDR when empty.
	Address string
	// ConsulAddress and ConsulToken reach Consul when there is no address.
	ConsulAddress, ConsulToken string
	// LeaderKey is the election key; DefaultKey when empty.
	LeaderKey string
	// Timeout bounds one request; DefaultTimeout when 0.
	Timeout time.Duration
	// Token is the caller's Nomad ACL token, sent as X-Nomad-Token: the
	// leader allows what it allows in Nomad. NOMAD_TOKEN when empty.
	Token string
	// CACert, ClientCert and ClientKey are the files of TLS to an HTTPS
	// agent: the CA that signed its certificate (default
	// FORESIGHT_CACERT; the system's roots when none) and a client
	// certificate (FORESIGHT_CLIENT_CERT, FORESIGHT_CLIENT_KEY).
	CACert, ClientCert, ClientKey string
}

// Client talks to the Foresight leader's HTTP API.
type Client struct {
	fixed  string            // base URL when configured
	consul *consulapi.Client // finds the leader otherwise
	key    string
	http   *http.Client // follows the standbys' redirects
	token  string
}

// New checks cfg and returns a client; it does not contact anything yet.
func New(cfg Config) (*Client, error) {
	c := &Client{http: &http.Client{Timeout: cfg.Timeout}, key: cfg.LeaderKey, token: cmp.Or(cfg.Token, os.Getenv(EnvToken))}
	if c.http.Timeout == 0 {
		c.http.Timeout = DefaultTimeout
	}
	ca, cert, key := cmp.Or(cfg.CACert, os.Getenv(EnvCACert)), cmp.Or(cfg.ClientCert, os.Getenv(EnvClientCert)), cmp.Or(cfg.ClientKey, os.Getenv(EnvClientKey))
	if ca != "" || cert != "" {
		tlsCfg, err := wire.LoadClientTLS(ca, cert, key)
		if err != nil {
			return nil, fmt.Errorf("foresight leader client: %w", err)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tlsCfg
		c.http.Transport = tr
	}
	addr := cfg.Address
	if addr == "" {
		addr = os.Getenv(EnvAddress)
	}
	if addr != "" {
		u, err := url.Parse(addr)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("leader address %q is not an http(s) URL such as http://127.0.0.1:7460", addr)
		}
		c.fixed = strings.TrimSuffix(addr, "/")
		return c, nil
	}
	cc := consulapi.DefaultConfig()
	if cfg.ConsulAddress != "" {
		cc.Address = cfg.ConsulAddress
	}
	if cfg.ConsulToken != "" {
		cc.Token = cfg.ConsulToken
	}
	consul, err := consulapi.NewClient(cc)
	if err != nil {
		return nil, fmt.Errorf("consul client to find the Foresight leader: %w", err)
	}
	c.consul = consul
	return c, nil
}

// Base returns the base URL requests go to: the configured address, or the
// leader's as the election key names it now.
func (c *Client) Base(ctx context.Context) (string, error) {
	if c.fixed != "" {
		return c.fixed, nil
	}
	leader, ok, err := Current(ctx, c.consul, c.key)
	if err != nil {
		return "", fmt.Errorf("find the Foresight leader (set %s to skip Consul): %w", EnvAddress, err)
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

// Do sends a request to the leader's API and decodes its JSON answer into
// out; in, when not nil, is sent as the JSON body.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	base, err := c.Base(ctx)
	if err != nil {
		return err
	}
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
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
	if c.token != "" {
		// X-Nomad-Token rather than Authorization: Go's client keeps it
		// on a standby's redirect to the leader's host.
		req.Header.Set("X-Nomad-Token", c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("foresight leader: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("foresight leader: %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorResponse
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

// groupPath is the API path of a group.
func groupPath(group string) (string, error) {
	ref, err := telemetry.ParseGroup(group)
	if err != nil {
		return "", err
	}
	return "/v1/group/" + ref.Path(), nil
}

// Health asks the agent whether it runs and whether it leads.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var out Health
	err := c.Do(ctx, http.MethodGet, "/v1/health", nil, &out)
	return out, err
}

// Status reads the leader's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	err := c.Do(ctx, http.MethodGet, "/v1/status", nil, &out)
	return out, err
}

// Decisions lists the leader's recent decisions, oldest first.
func (c *Client) Decisions(ctx context.Context) ([]Decision, error) {
	var out []Decision
	err := c.Do(ctx, http.MethodGet, "/v1/decisions", nil, &out)
	return out, err
}

// Plan decides every group now, writing nothing.
func (c *Client) Plan(ctx context.Context) ([]Decision, error) {
	var out []Decision
	err := c.Do(ctx, http.MethodGet, "/v1/plan", nil, &out)
	return out, err
}

// SetPaused pauses or resumes actuation cluster-wide.
func (c *Client) SetPaused(ctx context.Context, paused bool) (PauseResponse, error) {
	path := "/v1/resume"
	if paused {
		path = "/v1/pause"
	}
	var out PauseResponse
	err := c.Do(ctx, http.MethodPost, path, nil, &out)
	return out, err
}

// Series fetches a group's demand for a metric from from to to at a step.
func (c *Client) Series(ctx context.Context, group, metric string, from, to time.Time, step time.Duration) (SeriesResponse, error) {
	p, err := groupPath(group)
	if err != nil {
		return SeriesResponse{}, err
	}
	q := url.Values{"metric": {metric}, "from": {from.UTC().Format(time.RFC3339)}, "to": {to.UTC().Format(time.RFC3339)}, "step": {step.String()}}
	var out SeriesResponse
	err = c.Do(ctx, http.MethodGet, p+"/series?"+q.Encode(), nil, &out)
	return out, err
}

// Forecast asks for the forecast of a group's demand for a metric over the
// next horizon at a step, with the quantile levels given.
func (c *Client) Forecast(ctx context.Context, group, metric string, levels []float64, horizon, step time.Duration) (ForecastResponse, error) {
	p, err := groupPath(group)
	if err != nil {
		return ForecastResponse{}, err
	}
	qs := make([]string, len(levels))
	for i, q := range levels {
		qs[i] = strconv.FormatFloat(q, 'g', -1, 64)
	}
	v := url.Values{"metric": {metric}, "horizon": {horizon.String()}, "step": {step.String()}, "quantiles": {strings.Join(qs, ",")}}
	var out ForecastResponse
	err = c.Do(ctx, http.MethodGet, p+"/forecast?"+v.Encode(), nil, &out)
	return out, err
}

// ScaleStatus reads a group's count, readiness, last change and mode.
func (c *Client) ScaleStatus(ctx context.Context, group string) (ScaleStatus, error) {
	p, err := groupPath(group)
	if err != nil {
		return ScaleStatus{}, err
	}
	var out ScaleStatus
	err = c.Do(ctx, http.MethodGet, p+"/scale", nil, &out)
	return out, err
}

// Scale hands a scaling action for a group to the leader.
func (c *Client) Scale(ctx context.Context, group string, req ScaleRequest) (ScaleResponse, error) {
	p, err := groupPath(group)
	if err != nil {
		return ScaleResponse{}, err
	}
	var out ScaleResponse
	err = c.Do(ctx, http.MethodPost, p+"/scale", req, &out)
	return out, err
}
