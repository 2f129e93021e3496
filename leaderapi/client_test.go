package leaderapi

import (
	"context"
	"strings"
	"testing"
)

func TestAddressFromEnv(t *testing.T) {
	t.Setenv(EnvAddress, "http://127.0.0.1:1/")
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if base, err := c.Base(context.Background()); err != nil || base != "http://127.0.0.1:1" {
		t.Fatalf("base %q, %v", base, err)
	}
	t.Setenv(EnvAddress, "127.0.0.1:7460")
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
		t.Fatalf("error %v", err)
	}
}
