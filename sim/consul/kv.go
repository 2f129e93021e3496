package consul

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// maxValueSize is Consul's default kv_max_value_size.
const maxValueSize = 512 * 1024

// kvEntry is one key as Consul stores and returns it. Field order and tags
// follow Consul's DirEntry, so it encodes exactly as Consul's responses do.
type kvEntry struct {
	LockIndex   uint64
	Key         string
	Flags       uint64
	Value       []byte
	Session     string `json:",omitempty"`
	CreateIndex uint64
	ModifyIndex uint64
}

// same reports whether e already holds what a write would store, in which
// case Consul skips the write and leaves ModifyIndex alone.
func (e *kvEntry) same(o *kvEntry) bool {
	return e.LockIndex == o.LockIndex && e.Key == o.Key && e.Flags == o.Flags &&
		bytes.Equal(e.Value, o.Value) && e.Session == o.Session
}

// kvStore is the key/value table with its tombstones and lock-delays.
// Every method expects the Server's mu to be held.
type kvStore struct {
	entries map[string]*kvEntry
	sorted  []string // keys of entries, sorted, for prefix scans
	// tombstones holds the index at which each deleted key was deleted, so
	// that prefix queries see deletions as changes (Consul's graveyard).
	tombstones map[string]uint64
	// index is the highest index of any change to entries or tombstones.
	index uint64
	// lockDelay holds, per key, the time before which no session may
	// acquire it because its previous holder's session was invalidated.
	lockDelay map[string]time.Time
}

func newKVStore() kvStore {
	return kvStore{
		entries:    map[string]*kvEntry{},
		tombstones: map[string]uint64{},
		lockDelay:  map[string]time.Time{},
	}
}

// put stores e at idx unless it is unchanged, keeping CreateIndex.
func (kv *kvStore) put(idx uint64, e *kvEntry) {
	old, ok := kv.entries[e.Key]
	if ok {
		e.CreateIndex = old.CreateIndex
		if old.same(e) {
			e.ModifyIndex = old.ModifyIndex
			return
		}
	} else {
		e.CreateIndex = idx
		i, _ := slices.BinarySearch(kv.sorted, e.Key)
		kv.sorted = slices.Insert(kv.sorted, i, e.Key)
	}
	e.ModifyIndex = idx
	kv.entries[e.Key] = e
	delete(kv.tombstones, e.Key)
	kv.index = idx
}

// remove deletes key at idx, leaving a tombstone. It returns the removed
// entry, or nil if there was none.
func (kv *kvStore) remove(idx uint64, key string) *kvEntry {
	e, ok := kv.entries[key]
	if !ok {
		return nil
	}
	delete(kv.entries, key)
	if i, found := slices.BinarySearch(kv.sorted, key); found {
		kv.sorted = slices.Delete(kv.sorted, i, i+1)
	}
	kv.tombstones[key] = idx
	kv.index = idx
	return e
}

// prefixRange returns the sorted keys starting with prefix.
func (kv *kvStore) prefixRange(prefix string) []string {
	lo := sort.SearchStrings(kv.sorted, prefix)
	hi := lo
	for hi < len(kv.sorted) && strings.HasPrefix(kv.sorted[hi], prefix) {
		hi++
	}
	return kv.sorted[lo:hi]
}

// listIndex is the index Consul reports for a prefix read: the highest
// ModifyIndex under the prefix or tombstone under it; for the empty prefix,
// or when nothing was ever under the prefix, the table index.
func (kv *kvStore) listIndex(prefix string, keys []string) uint64 {
	if prefix == "" {
		return kv.index
	}
	var idx uint64
	for _, k := range keys {
		idx = max(idx, kv.entries[k].ModifyIndex)
	}
	for k, gone := range kv.tombstones {
		if strings.HasPrefix(k, prefix) {
			idx = max(idx, gone)
		}
	}
	if idx == 0 {
		return kv.index
	}
	return idx
}

// lockDelayed reports whether key is in its lock-delay at now, forgetting
// delays that have run out.
func (kv *kvStore) lockDelayed(key string, now time.Time) bool {
	until, ok := kv.lockDelay[key]
	if !ok {
		return false
	}
	if now.Before(until) {
		return true
	}
	delete(kv.lockDelay, key)
	return false
}

// kvWrite is one parsed PUT on a key.
type kvWrite struct {
	key     string
	flags   uint64
	value   []byte
	op      kvOp
	cas     uint64
	session string
}

type kvOp int

const (
	kvSet kvOp = iota
	kvCAS
	kvLock
	kvUnlock
)

// applyWrite performs a PUT and returns its answer: always true for a plain
// set, the outcome for cas, acquire and release.
func (s *Server) applyWrite(wr kvWrite) (bool, error) {
	s.mu.Lock()
	defer s.unlock()
	s.expireDueLocked()
	e := &kvEntry{Key: wr.key, Flags: wr.flags, Value: wr.value}
	old := s.kv.entries[wr.key]
	switch wr.op {
	case kvSet:
		if old != nil {
			e.Session = old.Session
		}
		s.kv.put(s.commit(), e)
		return true, nil
	case kvCAS:
		if (wr.cas == 0 && old != nil) || (wr.cas != 0 && (old == nil || old.ModifyIndex != wr.cas)) {
			s.commit()
			return false, nil
		}
		if old != nil {
			e.Session = old.Session
		}
		s.kv.put(s.commit(), e)
		return true, nil
	case kvLock:
		return s.acquireLocked(e, wr.session, old)
	case kvUnlock:
		idx := s.commit()
		if wr.session == "" {
			return false, fmt.Errorf("missing session")
		}
		if old == nil || old.Session != wr.session {
			return false, nil
		}
		e.LockIndex = old.LockIndex
		s.kv.put(idx, e)
		s.sessions.release(wr.session, wr.key)
		return true, nil
	}
	return false, fmt.Errorf("unknown kv operation %d", wr.op)
}

// acquireLocked takes the lock on e.Key for session, with Consul's rules:
// refused while the key is in lock-delay (before any write, as Consul checks
// on the leader), an error for an unknown session, false if another session
// holds it, and a value update without a new LockIndex if the session
// already holds it.
func (s *Server) acquireLocked(e *kvEntry, session string, old *kvEntry) (bool, error) {
	if s.kv.lockDelayed(e.Key, s.now()) {
		s.logger.Warn("rejecting lock of key due to lock-delay", "key", e.Key, "session", session)
		return false, nil
	}
	idx := s.commit()
	if session == "" {
		return false, fmt.Errorf("missing session")
	}
	if _, ok := s.sessions.byID[session]; !ok {
		return false, fmt.Errorf("invalid session %q", session)
	}
	e.Session = session
	switch {
	case old == nil:
		e.LockIndex = 1
	case old.Session == session:
		e.LockIndex = old.LockIndex
	case old.Session != "":
		return false, nil
	default:
		e.LockIndex = old.LockIndex + 1
	}
	s.kv.put(idx, e)
	s.sessions.hold(session, e.Key)
	return true, nil
}

// deleteKeys performs a DELETE: one key, a prefix with recurse, or a
// check-and-delete against a ModifyIndex. It returns the CAS outcome, true
// otherwise.
func (s *Server) deleteKeys(key string, recurse bool, cas *uint64) bool {
	s.mu.Lock()
	defer s.unlock()
	idx := s.commit()
	switch {
	case recurse:
		for _, k := range slices.Clone(s.kv.prefixRange(key)) {
			s.removeKeyLocked(idx, k)
		}
	case cas != nil:
		old, ok := s.kv.entries[key]
		if !ok || old.ModifyIndex != *cas {
			return !ok
		}
		s.removeKeyLocked(idx, key)
	default:
		s.removeKeyLocked(idx, key)
	}
	return true
}

// removeKeyLocked deletes a key and forgets that its session held it.
func (s *Server) removeKeyLocked(idx uint64, key string) {
	if e := s.kv.remove(idx, key); e != nil && e.Session != "" {
		s.sessions.release(e.Session, key)
	}
}

func (s *Server) routeKV(mux *http.ServeMux) {
	mux.Handle("/v1/kv/", endpoint(s.serveKV, http.MethodGet, http.MethodPut, http.MethodDelete))
}

func (s *Server) serveKV(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkDatacenter(r); err != nil {
		return err
	}
	key := strings.TrimPrefix(r.URL.Path, "/v1/kv/")
	switch r.Method {
	case http.MethodGet:
		if _, ok := r.URL.Query()["keys"]; ok {
			return s.kvGetKeys(w, r, key)
		}
		return s.kvGet(w, r, key)
	case http.MethodPut:
		return s.kvPut(w, r, key)
	default:
		return s.kvDelete(w, r, key)
	}
}

func (s *Server) kvGet(w http.ResponseWriter, r *http.Request, key string) error {
	q, err := s.parseQuery(r)
	if err != nil {
		return err
	}
	params := r.URL.Query()
	_, recurse := params["recurse"]
	if !recurse && key == "" {
		return errorf(http.StatusBadRequest, "Missing key name")
	}
	var out []kvEntry
	index := s.blockingRead(r.Context(), q, func() uint64 {
		out = out[:0]
		if recurse {
			keys := s.kv.prefixRange(key)
			for _, k := range keys {
				out = append(out, *s.kv.entries[k])
			}
			return s.kv.listIndex(key, keys)
		}
		if e, ok := s.kv.entries[key]; ok {
			out = append(out, *e)
			return e.ModifyIndex
		}
		return s.kv.index
	})
	setMeta(w, index, "")
	if len(out) == 0 {
		w.WriteHeader(http.StatusNotFound)
		return nil
	}
	if _, raw := params["raw"]; raw && !recurse {
		// Consul pins the type of raw values so browsers never sniff them.
		h := w.Header()
		h.Set("Content-Length", strconv.Itoa(len(out[0].Value)))
		h.Set("Content-Type", "text/plain")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "sandbox")
		_, _ = w.Write(out[0].Value)
		return nil
	}
	return writeJSON(w, out)
}

func (s *Server) kvGetKeys(w http.ResponseWriter, r *http.Request, prefix string) error {
	q, err := s.parseQuery(r)
	if err != nil {
		return err
	}
	params := r.URL.Query()
	// Consul still honours its historic misspelling.
	sep := params.Get("seperator")
	if _, ok := params["separator"]; ok {
		sep = params.Get("separator")
	}
	var out []string
	index := s.blockingRead(r.Context(), q, func() uint64 {
		keys := s.kv.prefixRange(prefix)
		out = collapseKeys(keys, prefix, sep)
		return s.kv.listIndex(prefix, keys)
	})
	setMeta(w, index, "")
	if len(out) == 0 && prefix != "" {
		w.WriteHeader(http.StatusNotFound)
		return nil
	}
	if out == nil {
		out = []string{}
	}
	return writeJSON(w, out)
}

// collapseKeys lists keys under prefix, folding everything after the first
// separator into one "directory" key, as ?keys&separator does.
func collapseKeys(keys []string, prefix, sep string) []string {
	var out []string
	for _, k := range keys {
		if sep == "" {
			out = append(out, k)
			continue
		}
		rest := k[len(prefix):]
		if i := strings.Index(rest, sep); i >= 0 {
			dir := k[:len(prefix)+i+len(sep)]
			if len(out) == 0 || out[len(out)-1] != dir {
				out = append(out, dir)
			}
			continue
		}
		out = append(out, k)
	}
	return out
}

func (s *Server) kvPut(w http.ResponseWriter, r *http.Request, key string) error {
	if key == "" {
		return errorf(http.StatusBadRequest, "Missing key name")
	}
	params := r.URL.Query()
	if conflictingFlags(w, params, "cas", "acquire", "release") {
		return nil
	}
	wr := kvWrite{key: key, op: kvSet}
	if _, ok := params["flags"]; ok {
		// Consul answers unparsable numbers with the raw parse error and 500.
		f, err := strconv.ParseUint(params.Get("flags"), 10, 64)
		if err != nil {
			return err
		}
		wr.flags = f
	}
	if _, ok := params["cas"]; ok {
		c, err := strconv.ParseUint(params.Get("cas"), 10, 64)
		if err != nil {
			return err
		}
		wr.op, wr.cas = kvCAS, c
	}
	if _, ok := params["acquire"]; ok {
		wr.op, wr.session = kvLock, params.Get("acquire")
	}
	if _, ok := params["release"]; ok {
		wr.op, wr.session = kvUnlock, params.Get("release")
	}
	if r.ContentLength > maxValueSize {
		return errorf(http.StatusRequestEntityTooLarge,
			"Request body(%d bytes) too large, max size: %d bytes. See %s.", r.ContentLength, maxValueSize,
			"https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxValueSize+1))
	if err != nil {
		return fmt.Errorf("read value of key %q: %w", key, err)
	}
	if len(body) > maxValueSize {
		return errorf(http.StatusRequestEntityTooLarge, "Value exceeds %d byte limit", maxValueSize)
	}
	if len(body) > 0 {
		wr.value = body
	}
	ok, err := s.applyWrite(wr)
	if err != nil {
		return err
	}
	return writeJSON(w, ok)
}

func (s *Server) kvDelete(w http.ResponseWriter, r *http.Request, key string) error {
	params := r.URL.Query()
	if conflictingFlags(w, params, "recurse", "cas") {
		return nil
	}
	_, recurse := params["recurse"]
	if !recurse && key == "" {
		return errorf(http.StatusBadRequest, "Missing key name")
	}
	var cas *uint64
	if _, ok := params["cas"]; ok {
		c, err := strconv.ParseUint(params.Get("cas"), 10, 64)
		if err != nil {
			return err
		}
		cas = &c
	}
	return writeJSON(w, s.deleteKeys(key, recurse, cas))
}

// conflictingFlags answers 400 when more than one of flags is present, with
// Consul's message, and reports whether it did.
func conflictingFlags(w http.ResponseWriter, params url.Values, flags ...string) bool {
	n := 0
	for _, f := range flags {
		if _, ok := params[f]; ok {
			n++
		}
	}
	if n < 2 {
		return false
	}
	writeText(w, http.StatusBadRequest, "Conflicting flags: "+params.Encode()+"\n")
	return true
}
