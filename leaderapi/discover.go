package leaderapi

import (
	"context"
	"encoding/json"
	"fmt"

	consulapi "github.com/hashicorp/consul/api"
)

// DefaultKey is the Consul KV key of the leader lock.
const DefaultKey = "foresight/leader"

// Record is what the lock's value says about the agent holding it.
type Record struct {
	// GRPC is the address agents ship telemetry to.
	GRPC string `json:"grpc"`
	// HTTP is the base URL of the leader's HTTP API.
	HTTP string `json:"http"`
	// ID names the agent.
	ID string `json:"id"`
}

// Current reads who leads now from the election key (DefaultKey when key is
// empty); ok is false when nobody holds the lock.
func Current(ctx context.Context, client *consulapi.Client, key string) (leader Record, ok bool, err error) {
	if key == "" {
		key = DefaultKey
	}
	pair, _, err := client.KV().Get(key, (&consulapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return Record{}, false, fmt.Errorf("read leader key %q: %w", key, err)
	}
	if pair == nil || pair.Session == "" {
		return Record{}, false, nil
	}
	if err := json.Unmarshal(pair.Value, &leader); err != nil {
		return Record{}, false, fmt.Errorf("leader key %q holds %q, not a leader record: %w", key, pair.Value, err)
	}
	return leader, true, nil
}
