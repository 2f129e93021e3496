package consul

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Session rules from Consul.
const (
	// sessionBehaviorRelease releases held keys when a session is invalidated.
	sessionBehaviorRelease = "release"
	// sessionBehaviorDelete deletes held keys when a session is invalidated.
	sessionBehaviorDelete = "delete"
	// defaultLockDelay is applied to keys released by an invalidated session.
	defaultLockDelay = 15 * time.Second
	// maxLockDelay caps a session's lock-delay when it is applied: Consul
	// stores a longer one as given but never enforces more.
	maxLockDelay = 60 * time.Second
	// sessionTTLMin and sessionTTLMax bound a session's TTL.
	sessionTTLMin = 10 * time.Second
	sessionTTLMax = 24 * time.Hour
	// sessionTTLMultiplier: Consul's leader arms each TTL session's timer
	// for twice its TTL at every renewal (and re-arms all of them in full
	// when a new leader is elected), and invalidates the session when it
	// fires. Consul's contract is only "not before the TTL"; the timer is
	// what it does, so sim expires a session exactly 2 × TTL after its last
	// renewal: the worst case for failover, and the only case a single
	// Consul leader produces.
	sessionTTLMultiplier = 2
	// lockDelayMinThreshold: a lock delay below it is taken as seconds, since
	// users often send 15 meaning 15s.
	lockDelayMinThreshold = 1000
	// serfCheckID is the node health check every session watches by default.
	serfCheckID = "serfHealth"
)

// session is one Consul session and the keys it holds.
type session struct {
	sessionJSON
	ttl     time.Duration
	expires time.Time // zero when the session has no TTL
	held    map[string]struct{}
}

// serviceCheckRef names a service check a session watches.
type serviceCheckRef struct {
	ID        string
	Namespace string
}

// sessionJSON is a session as Consul's session endpoints return it.
type sessionJSON struct {
	ID            string
	Name          string
	Node          string
	LockDelay     time.Duration
	Behavior      string
	TTL           string
	NodeChecks    []string
	ServiceChecks []serviceCheckRef
	CreateIndex   uint64
	ModifyIndex   uint64
}

// toJSON copies the session for answering outside the lock.
func (ss *session) toJSON() sessionJSON {
	out := ss.sessionJSON
	out.NodeChecks = slices.Clone(ss.NodeChecks)
	out.ServiceChecks = slices.Clone(ss.ServiceChecks)
	return out
}

// watches reports whether the session is tied to the check checkID.
func (ss *session) watches(checkID string) bool {
	if slices.Contains(ss.NodeChecks, checkID) {
		return true
	}
	return slices.ContainsFunc(ss.ServiceChecks, func(c serviceCheckRef) bool { return c.ID == checkID })
}

// sessionStore is the session table. Every method expects the Server's mu
// to be held.
type sessionStore struct {
	byID  map[string]*session
	index uint64
}

func newSessionStore() sessionStore {
	return sessionStore{byID: map[string]*session{}}
}

// hold records that session holds key.
func (st *sessionStore) hold(id, key string) {
	if ss, ok := st.byID[id]; ok {
		ss.held[key] = struct{}{}
	}
}

// release forgets that session holds key.
func (st *sessionStore) release(id, key string) {
	if ss, ok := st.byID[id]; ok {
		delete(ss.held, key)
	}
}

// sorted returns the sessions matching keep, ordered by ID as Consul lists
// them.
func (st *sessionStore) sorted(keep func(*session) bool) []sessionJSON {
	out := []sessionJSON{}
	for _, ss := range st.byID {
		if keep(ss) {
			out = append(out, ss.toJSON())
		}
	}
	slices.SortFunc(out, func(a, b sessionJSON) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// sessionRequest is the body of PUT /v1/session/create. Checks fields are
// pointers so that an explicit empty list, which removes the default
// serfHealth check, differs from no list at all.
type sessionRequest struct {
	Name          string
	Node          string
	LockDelay     json.RawMessage
	Behavior      string
	TTL           string
	Checks        *[]string
	NodeChecks    *[]string
	ServiceChecks *[]serviceCheckRef
}

// parseLockDelay reads LockDelay as Consul does: a duration string or a
// number of nanoseconds, where values under 1000 mean seconds.
func parseLockDelay(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return defaultLockDelay, nil
	}
	var d time.Duration
	var str string
	var num float64
	switch {
	case json.Unmarshal(raw, &str) == nil:
		parsed, err := time.ParseDuration(str)
		if err != nil {
			return 0, err
		}
		d = parsed
	case json.Unmarshal(raw, &num) == nil:
		d = time.Duration(num)
	default:
		return 0, fmt.Errorf("LockDelay must be a duration string or a number, not %s", raw)
	}
	if d < lockDelayMinThreshold {
		d *= time.Second
	}
	return d, nil
}

// SessionOptions describe a session created from Go with CreateSession.
type SessionOptions struct {
	Name      string
	TTL       time.Duration // zero for no TTL
	Behavior  string        // "release" (default) or "delete"
	LockDelay time.Duration // zero for Consul's default of 15s
}

// CreateSession creates a session on sim's node, watching serfHealth, as
// PUT /v1/session/create does, and returns its ID.
func (s *Server) CreateSession(opts SessionOptions) (string, error) {
	ss := &session{sessionJSON: sessionJSON{Name: opts.Name, Node: s.node.Name, Behavior: opts.Behavior,
		LockDelay: opts.LockDelay, NodeChecks: []string{serfCheckID}}}
	if ss.LockDelay == 0 {
		ss.LockDelay = defaultLockDelay
	}
	if opts.TTL > 0 {
		ss.TTL = opts.TTL.String()
	}
	if err := s.createSession(ss); err != nil {
		return "", fmt.Errorf("create session %q: %w", opts.Name, err)
	}
	return ss.ID, nil
}

// createSession validates ss with Consul's rules and stores it.
func (s *Server) createSession(ss *session) error {
	switch ss.Behavior {
	case "":
		ss.Behavior = sessionBehaviorRelease
	case sessionBehaviorRelease, sessionBehaviorDelete:
	default:
		return fmt.Errorf("Invalid Behavior setting '%s'", ss.Behavior)
	}
	if ss.TTL != "" {
		ttl, err := time.ParseDuration(ss.TTL)
		if err != nil {
			return fmt.Errorf("Session TTL '%s' invalid: %v", ss.TTL, err)
		}
		if ttl != 0 && (ttl < sessionTTLMin || ttl > sessionTTLMax) {
			return fmt.Errorf("Invalid Session TTL '%d', must be between [%v=%v]", ttl, sessionTTLMin, sessionTTLMax)
		}
		ss.ttl = ttl
	}
	s.mu.Lock()
	defer s.unlock()
	if ss.Node != s.node.Name {
		return errors.New("Missing node registration")
	}
	for _, id := range ss.NodeChecks {
		if err := s.catalog.usableForSession(id); err != nil {
			return err
		}
	}
	for _, c := range ss.ServiceChecks {
		if err := s.catalog.usableForSession(c.ID); err != nil {
			return err
		}
	}
	idx := s.commit()
	ss.ID = newUUID()
	ss.CreateIndex, ss.ModifyIndex = idx, idx
	ss.held = map[string]struct{}{}
	if ss.ttl > 0 {
		ss.expires = s.now().Add(ss.ttl * sessionTTLMultiplier)
	}
	s.sessions.byID[ss.ID] = ss
	s.sessions.index = idx
	if ss.ttl > 0 {
		s.wakeReaper()
	}
	return nil
}

// DestroySession invalidates a session now, as PUT /v1/session/destroy
// does: its keys are released or deleted per its Behavior and enter their
// lock-delay. It reports whether the session existed.
func (s *Server) DestroySession(id string) bool {
	s.mu.Lock()
	defer s.unlock()
	return s.invalidateSessionLocked(id, s.now(), "destroyed")
}

// invalidateSessionLocked removes a session at time at, releasing or
// deleting what it held and starting the lock-delay of each such key.
func (s *Server) invalidateSessionLocked(id string, at time.Time, reason string) bool {
	ss, ok := s.sessions.byID[id]
	if !ok {
		return false
	}
	idx := s.commit()
	delete(s.sessions.byID, id)
	s.sessions.index = idx
	for _, key := range slices.Sorted(maps.Keys(ss.held)) {
		if ss.Behavior == sessionBehaviorDelete {
			s.kv.remove(idx, key)
		} else if e, ok := s.kv.entries[key]; ok {
			released := *e
			released.Session = ""
			s.kv.put(idx, &released)
		}
		if ss.LockDelay > 0 {
			s.kv.lockDelay[key] = at.Add(min(ss.LockDelay, maxLockDelay))
		}
	}
	s.logger.Debug("session invalidated", "id", id, "name", ss.Name, "reason", reason, "keys", len(ss.held))
	return true
}

// invalidateSessionsForCheckLocked invalidates every session tied to a check
// that went critical or away, as Consul does.
func (s *Server) invalidateSessionsForCheckLocked(checkID string) {
	for _, id := range slices.Sorted(maps.Keys(s.sessions.byID)) {
		if s.sessions.byID[id].watches(checkID) {
			s.invalidateSessionLocked(id, s.now(), "check "+checkID+" failed")
		}
	}
}

// renewSession restarts a session's TTL and returns it, or nil if unknown.
func (s *Server) renewSession(id string) *sessionJSON {
	s.mu.Lock()
	defer s.unlock()
	s.expireDueLocked()
	ss, ok := s.sessions.byID[id]
	if !ok {
		return nil
	}
	if ss.ttl > 0 {
		ss.expires = s.now().Add(ss.ttl * sessionTTLMultiplier)
	}
	out := ss.toJSON()
	return &out
}

func (s *Server) routeSessions(mux *http.ServeMux) {
	mux.Handle("/v1/session/create", endpoint(s.serveSessionCreate, http.MethodPut))
	mux.Handle("/v1/session/destroy/", endpoint(s.serveSessionDestroy, http.MethodPut))
	mux.Handle("/v1/session/renew/", endpoint(s.serveSessionRenew, http.MethodPut))
	mux.Handle("/v1/session/info/", endpoint(s.serveSessionInfo, http.MethodGet))
	mux.Handle("/v1/session/node/", endpoint(s.serveSessionNode, http.MethodGet))
	mux.Handle("/v1/session/list", endpoint(s.serveSessionList, http.MethodGet))
}

func (s *Server) serveSessionCreate(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkDatacenter(r); err != nil {
		return err
	}
	ss := &session{sessionJSON: sessionJSON{Node: s.node.Name, LockDelay: defaultLockDelay, NodeChecks: []string{serfCheckID}}}
	var req sessionRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		return errorf(http.StatusBadRequest, "Request decode failed: %v", err)
	}
	delay, err := parseLockDelay(req.LockDelay)
	if err != nil {
		return errorf(http.StatusBadRequest, "Request decode failed: %v", err)
	}
	ss.Name, ss.Behavior, ss.TTL, ss.LockDelay = req.Name, req.Behavior, req.TTL, delay
	if req.Node != "" {
		ss.Node = req.Node
	}
	if req.Checks != nil || req.NodeChecks != nil || req.ServiceChecks != nil {
		ss.NodeChecks = nil
		for _, list := range []*[]string{req.Checks, req.NodeChecks} {
			if list == nil {
				continue
			}
			for _, id := range *list {
				if !slices.Contains(ss.NodeChecks, id) {
					ss.NodeChecks = append(ss.NodeChecks, id)
				}
			}
		}
		if req.ServiceChecks != nil {
			ss.ServiceChecks = *req.ServiceChecks
		}
	}
	if err := s.createSession(ss); err != nil {
		return err
	}
	return writeJSON(w, struct{ ID string }{ss.ID})
}

func (s *Server) serveSessionDestroy(w http.ResponseWriter, r *http.Request) error {
	id := strings.TrimPrefix(r.URL.Path, "/v1/session/destroy/")
	if id == "" {
		return errorf(http.StatusBadRequest, "Missing session")
	}
	if err := s.checkDatacenter(r); err != nil {
		return err
	}
	s.DestroySession(id)
	return writeJSON(w, true)
}

func (s *Server) serveSessionRenew(w http.ResponseWriter, r *http.Request) error {
	id := strings.TrimPrefix(r.URL.Path, "/v1/session/renew/")
	if id == "" {
		return errorf(http.StatusBadRequest, "Missing session")
	}
	if err := s.checkDatacenter(r); err != nil {
		return err
	}
	ss := s.renewSession(id)
	if ss == nil {
		return errorf(http.StatusNotFound, "Session id '%s' not found", id)
	}
	return writeJSON(w, []sessionJSON{*ss})
}

func (s *Server) serveSessionInfo(w http.ResponseWriter, r *http.Request) error {
	id := strings.TrimPrefix(r.URL.Path, "/v1/session/info/")
	if id == "" {
		return errorf(http.StatusBadRequest, "Missing session")
	}
	return s.serveSessions(w, r, func(ss *session) bool { return ss.ID == id })
}

func (s *Server) serveSessionNode(w http.ResponseWriter, r *http.Request) error {
	node := strings.TrimPrefix(r.URL.Path, "/v1/session/node/")
	if node == "" {
		return errorf(http.StatusBadRequest, "Missing node name")
	}
	return s.serveSessions(w, r, func(ss *session) bool { return ss.Node == node })
}

func (s *Server) serveSessionList(w http.ResponseWriter, r *http.Request) error {
	return s.serveSessions(w, r, func(*session) bool { return true })
}

// serveSessions answers a blocking read of the sessions matching keep, at
// the session table's index.
func (s *Server) serveSessions(w http.ResponseWriter, r *http.Request, keep func(*session) bool) error {
	q, err := s.parseQuery(r)
	if err != nil {
		return err
	}
	var out []sessionJSON
	index := s.blockingRead(r.Context(), q, func() uint64 {
		out = s.sessions.sorted(keep)
		return s.sessions.index
	})
	setMeta(w, index, "")
	return writeJSON(w, out)
}
