// Package leaderconf reads the config keys with which the Foresight
// plugins name the leader, and keeps one leader client per distinct
// config so that a plugin called on every evaluation reuses its
// connections.
package leaderconf

import (
	"cmp"
	"strings"
	"sync"
	"time"

	"github.com/foresight-nomad/foresight/leaderapi"
)

// Config keys shared by the plugins that talk to the leader.
const (
	// Address is the leader's HTTP URL (any agent will do: standbys
	// redirect). Default: FORESIGHT_ADDR, else the Consul election key.
	Address = "address"
	// ConsulAddress is the Consul agent used to find the leader when no
	// address is given. Default: CONSUL_HTTP_ADDR.
	ConsulAddress = "consul_address"
	// ConsulToken is the Consul ACL token. Default: CONSUL_HTTP_TOKEN.
	ConsulToken = "consul_token"
	// LeaderKey is the Consul KV key of the leader lock.
	LeaderKey = "leader_key"
	// Token is the Nomad ACL token sent to the leader, which allows what
	// Nomad allows it. Default: the autoscaler's own Nomad token (the
	// nomad_token it hands its plugins), else NOMAD_TOKEN.
	Token = "token"
	// CACert, ClientCert and ClientKey are the files of TLS to an HTTPS
	// agent. Default: FORESIGHT_CACERT, FORESIGHT_CLIENT_CERT,
	// FORESIGHT_CLIENT_KEY.
	CACert     = "ca_cert"
	ClientCert = "client_cert"
	ClientKey  = "client_key"

	// autoscalerToken is the key under which the autoscaler hands its
	// plugins its own Nomad token.
	autoscalerToken = "nomad_token"
)

// Keys are the config keys that say how to reach the leader.
var Keys = []string{Address, ConsulAddress, ConsulToken, LeaderKey, Token, autoscalerToken, CACert, ClientCert, ClientKey}

// Timeout bounds one request of a plugin to the leader.
const Timeout = 15 * time.Second

// New builds a leader client from plugin config.
func New(config map[string]string) (*leaderapi.Client, error) {
	return leaderapi.New(leaderapi.Config{
		Address:       config[Address],
		ConsulAddress: config[ConsulAddress],
		ConsulToken:   config[ConsulToken],
		LeaderKey:     config[LeaderKey],
		Timeout:       Timeout,
		Token:         cmp.Or(config[Token], config[autoscalerToken]),
		CACert:        config[CACert],
		ClientCert:    config[ClientCert],
		ClientKey:     config[ClientKey],
	})
}

// Names reports whether config says how to reach a leader of its own:
// any of Keys but the token the autoscaler hands every plugin.
func Names(config map[string]string) bool {
	for _, k := range Keys {
		if k != autoscalerToken && config[k] != "" {
			return true
		}
	}
	return false
}

// Cache keeps one leader client per distinct value of Keys.
type Cache struct {
	mu sync.Mutex
	m  map[string]*leaderapi.Client
}

// Get returns the client for config, made on first use.
func (c *Cache) Get(config map[string]string) (*leaderapi.Client, error) {
	parts := make([]string, len(Keys))
	for i, k := range Keys {
		parts[i] = config[k]
	}
	key := strings.Join(parts, "\x00")
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.m[key]; ok {
		return l, nil
	}
	l, err := New(config)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*leaderapi.Client{}
	}
	c.m[key] = l
	return l, nil
}
