package consul

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func TestKVCheckAndSet(t *testing.T) {
	c := newTestCluster(t)
	kv := c.client.KV()

	ok, _, err := kv.CAS(&api.KVPair{Key: "foo", Value: []byte("bar"), ModifyIndex: 0}, nil)
	if err != nil || !ok {
		t.Fatalf("cas=0 on a missing key: ok=%v err=%v, want a create", ok, err)
	}
	pair, _, err := kv.Get("foo", nil)
	if err != nil || pair == nil {
		t.Fatalf("get foo: %v %v", pair, err)
	}
	first := pair.ModifyIndex

	ok, _, err = kv.CAS(&api.KVPair{Key: "foo", Value: []byte("baz"), ModifyIndex: 0}, nil)
	if err != nil || ok {
		t.Fatalf("cas=0 on an existing key: ok=%v err=%v, want false", ok, err)
	}
	ok, _, err = kv.CAS(&api.KVPair{Key: "foo", Value: []byte("qux"), ModifyIndex: first}, nil)
	if err != nil || !ok {
		t.Fatalf("cas with the current ModifyIndex: ok=%v err=%v, want true", ok, err)
	}
	ok, _, err = kv.CAS(&api.KVPair{Key: "foo", Value: []byte("stale"), ModifyIndex: first}, nil)
	if err != nil || ok {
		t.Fatalf("cas with a stale ModifyIndex: ok=%v err=%v, want false", ok, err)
	}
	pair, _, _ = kv.Get("foo", nil)
	if string(pair.Value) != "qux" || pair.CreateIndex != first || pair.ModifyIndex <= first {
		t.Fatalf("after cas: %+v, want value qux, CreateIndex %d and a newer ModifyIndex", pair, first)
	}

	// A refused CAS answers false with 200, not an error status.
	resp := c.do(t, http.MethodPut, "/v1/kv/foo?cas=0", "baz")
	if resp.status != http.StatusOK || resp.body != "false\n" {
		t.Fatalf("raw cas=0: %d %q, want 200 \"false\\n\"", resp.status, resp.body)
	}

	ok, _, err = kv.DeleteCAS(&api.KVPair{Key: "foo", ModifyIndex: first}, nil)
	if err != nil || ok {
		t.Fatalf("delete with a stale index: ok=%v err=%v, want false", ok, err)
	}
	ok, _, err = kv.DeleteCAS(&api.KVPair{Key: "foo", ModifyIndex: pair.ModifyIndex}, nil)
	if err != nil || !ok {
		t.Fatalf("delete with the current index: ok=%v err=%v, want true", ok, err)
	}
	if pair, _, _ := kv.Get("foo", nil); pair != nil {
		t.Fatalf("foo still there after delete: %+v", pair)
	}
}

func TestKVListKeysAndRecursiveDelete(t *testing.T) {
	c := newTestCluster(t)
	kv := c.client.KV()
	for _, p := range []*api.KVPair{
		{Key: "app/config/port", Value: []byte("8080")},
		{Key: "app/config/flags", Value: []byte("x"), Flags: 42},
		{Key: "app/name", Value: []byte("web")},
		{Key: "other", Value: []byte("1")},
	} {
		if _, err := kv.Put(p, nil); err != nil {
			t.Fatalf("put %s: %v", p.Key, err)
		}
	}
	pairs, meta, err := kv.List("app/", nil)
	if err != nil {
		t.Fatalf("list app/: %v", err)
	}
	var keys []string
	var maxModify uint64
	for _, p := range pairs {
		keys = append(keys, p.Key)
		maxModify = max(maxModify, p.ModifyIndex)
	}
	if want := []string{"app/config/flags", "app/config/port", "app/name"}; !slices.Equal(keys, want) {
		t.Fatalf("list app/ = %v, want %v", keys, want)
	}
	if pairs[0].Flags != 42 {
		t.Fatalf("flags of %s = %d, want 42", pairs[0].Key, pairs[0].Flags)
	}
	if meta.LastIndex != maxModify {
		t.Fatalf("list index = %d, want the highest ModifyIndex under the prefix, %d", meta.LastIndex, maxModify)
	}

	tests := []struct {
		prefix, sep string
		want        []string
	}{
		{"app/", "/", []string{"app/config/", "app/name"}},
		{"app/", "", []string{"app/config/flags", "app/config/port", "app/name"}},
		{"", "/", []string{"app/", "other"}},
	}
	for _, tt := range tests {
		got, _, err := kv.Keys(tt.prefix, tt.sep, nil)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("keys(%q, %q) = %v, %v; want %v", tt.prefix, tt.sep, got, err, tt.want)
		}
	}

	if _, err := kv.DeleteTree("app/config/", nil); err != nil {
		t.Fatalf("delete tree: %v", err)
	}
	got, meta, _ := kv.Keys("app/", "", nil)
	if !slices.Equal(got, []string{"app/name"}) {
		t.Fatalf("keys after delete tree = %v", got)
	}
	if meta.LastIndex <= maxModify {
		t.Fatalf("prefix index after a delete under it = %d, want above %d (tombstones count)", meta.LastIndex, maxModify)
	}

	raw := c.do(t, http.MethodGet, "/v1/kv/app/name?raw", "")
	if raw.status != http.StatusOK || raw.body != "web" || raw.header.Get("Content-Type") != "text/plain" {
		t.Fatalf("raw get: %d %q %q", raw.status, raw.body, raw.header.Get("Content-Type"))
	}
}

func TestKVBlockingQueryReturnsOnChange(t *testing.T) {
	c := newTestCluster(t)
	kv := c.client.KV()
	if _, err := kv.Put(&api.KVPair{Key: "foo", Value: []byte("bar")}, nil); err != nil {
		t.Fatal(err)
	}
	pair, meta, err := kv.Get("foo", nil)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		pair *api.KVPair
		meta *api.QueryMeta
		err  error
	}
	done := make(chan result, 1)
	go func() {
		p, m, err := kv.Get("foo", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		done <- result{p, m, err}
	}()
	c.waitBlocked(t, 1)
	// Writes elsewhere wake the query but must not answer it.
	if _, err := kv.Put(&api.KVPair{Key: "unrelated", Value: []byte("1")}, nil); err != nil {
		t.Fatal(err)
	}
	c.waitBlocked(t, 1)
	if _, err := kv.Put(&api.KVPair{Key: "foo", Value: []byte("qux")}, nil); err != nil {
		t.Fatal(err)
	}
	res := recv(t, "the blocking query", done)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if string(res.pair.Value) != "qux" || res.meta.LastIndex <= meta.LastIndex || res.meta.LastIndex != res.pair.ModifyIndex {
		t.Fatalf("blocking get returned %q at index %d (ModifyIndex %d); want qux at a new index (was %d)",
			res.pair.Value, res.meta.LastIndex, res.pair.ModifyIndex, pair.ModifyIndex)
	}
}

func TestKVBlockingQueryTimesOutWithSameIndex(t *testing.T) {
	c := newTestCluster(t)
	kv := c.client.KV()
	if _, err := kv.Put(&api.KVPair{Key: "foo", Value: []byte("bar")}, nil); err != nil {
		t.Fatal(err)
	}
	_, meta, err := kv.Get("foo", nil)
	if err != nil {
		t.Fatal(err)
	}
	pair, again, err := kv.Get("foo", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if again.LastIndex != meta.LastIndex || string(pair.Value) != "bar" {
		t.Fatalf("timed-out query: index %d value %q, want the same index %d and value bar", again.LastIndex, pair.Value, meta.LastIndex)
	}
}

func TestKVBlockingOnMissingKeyWakesOnCreate(t *testing.T) {
	c := newTestCluster(t)
	kv := c.client.KV()
	pair, meta, err := kv.Get("later", nil)
	if err != nil || pair != nil {
		t.Fatalf("missing key: %v %v", pair, err)
	}
	done := make(chan *api.KVPair, 1)
	go func() {
		p, _, _ := kv.Get("later", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		done <- p
	}()
	c.waitBlocked(t, 1)
	if _, err := kv.Put(&api.KVPair{Key: "later", Value: []byte("now")}, nil); err != nil {
		t.Fatal(err)
	}
	if p := recv(t, "the blocking query", done); p == nil || string(p.Value) != "now" {
		t.Fatalf("blocking get of a created key = %+v", p)
	}
}

func TestKVBadRequests(t *testing.T) {
	c := newTestCluster(t)
	tests := []struct {
		name, method, path string
		status             int
		body               string
	}{
		{"get without key", http.MethodGet, "/v1/kv/", http.StatusBadRequest, "Missing key name"},
		{"put without key", http.MethodPut, "/v1/kv/", http.StatusBadRequest, "Missing key name"},
		{"cas and acquire", http.MethodPut, "/v1/kv/k?acquire=x&cas=1", http.StatusBadRequest, "Conflicting flags: acquire=x&cas=1\n"},
		{"recurse and cas", http.MethodDelete, "/v1/kv/k?cas=1&recurse", http.StatusBadRequest, "Conflicting flags: cas=1&recurse=\n"},
		{"bad index", http.MethodGet, "/v1/kv/k?index=abc", http.StatusBadRequest, "Invalid index"},
		{"bad wait", http.MethodGet, "/v1/kv/k?index=1&wait=soon", http.StatusBadRequest, "Invalid wait time"},
		{"stale and consistent", http.MethodGet, "/v1/kv/k?stale&consistent", http.StatusBadRequest, "Cannot specify ?stale with ?consistent, conflicting semantics."},
		{"bad flags", http.MethodPut, "/v1/kv/k?flags=x", http.StatusInternalServerError, `strconv.ParseUint: parsing "x": invalid syntax`},
		{"unknown session", http.MethodPut, "/v1/kv/k?acquire=nope", http.StatusInternalServerError, `invalid session "nope"`},
		{"other datacenter", http.MethodGet, "/v1/kv/k?dc=dc2", http.StatusInternalServerError, "No path to datacenter"},
		{"method", http.MethodPost, "/v1/kv/k", http.StatusMethodNotAllowed, "method POST not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := c.do(t, tt.method, tt.path, "")
			if resp.status != tt.status || resp.body != tt.body {
				t.Fatalf("%s %s = %d %q, want %d %q", tt.method, tt.path, resp.status, resp.body, tt.status, tt.body)
			}
			if ct := resp.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Fatalf("content type %q, want text/plain; charset=utf-8", ct)
			}
		})
	}
}
