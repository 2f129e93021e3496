package host

import (
	"strconv"
	"testing"

	nomadapi "github.com/hashicorp/nomad/api"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func nomadConfig(t *testing.T, addr, token string) *nomadapi.Config {
	cfg := &nomadapi.Config{Address: addr, SecretID: token}
	if _, err := nomadapi.NewClient(cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}
