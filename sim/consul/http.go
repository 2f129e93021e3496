package consul

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// httpError is an error Consul answers with a specific status and a plain
// text body. Errors of any other type answer 500, as Consul's RPC errors do.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// commonHeaders adds the headers a Consul 1.16 dev agent puts on every
// response: ACLs are off, and the gzip wrapper always varies on encoding.
func commonHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Accept-Encoding")
		w.Header().Set("X-Consul-Default-Acl-Policy", "allow")
		next.ServeHTTP(w, r)
	})
}

// endpointFunc serves one endpoint; a returned error becomes the response.
type endpointFunc func(w http.ResponseWriter, r *http.Request) error

// endpoint wraps fn with Consul's method check (405 with an Allow header)
// and its error rendering.
func endpoint(fn endpointFunc, methods ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		allowed := false
		for _, m := range methods {
			if r.Method == m {
				allowed = true
				break
			}
		}
		if !allowed {
			w.Header().Add("Allow", strings.Join(methods, ","))
			writeText(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed", r.Method))
			return
		}
		if err := fn(w, r); err != nil {
			writeError(w, err)
		}
	}
}

// writeError renders err as Consul does: status from the error kind and the
// message as a plain text body without a trailing newline.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		code = he.code
	}
	writeText(w, code, err.Error())
}

func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg))
}

// writeJSON writes v as a Consul dev agent does: indented by four spaces and
// followed by a newline, scalars included.
func writeJSON(w http.ResponseWriter, v any) error {
	buf, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	buf = append(buf, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf)
	return nil
}

// Consistency modes a read can ask for, as reported in
// X-Consul-Effective-Consistency.
const (
	consistencyLeader     = "leader"
	consistencyStale      = "stale"
	consistencyConsistent = "consistent"
)

// queryOptions are the read parameters shared by every blocking endpoint.
type queryOptions struct {
	minIndex    uint64
	wait        time.Duration
	consistency string
}

// parseQuery reads dc, index, wait, stale and consistent the way Consul's
// HTTP layer does, with its error texts.
func (s *Server) parseQuery(r *http.Request) (queryOptions, error) {
	q := r.URL.Query()
	var opts queryOptions
	if err := s.checkDatacenter(r); err != nil {
		return opts, err
	}
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return opts, errorf(http.StatusBadRequest, "Invalid wait time")
		}
		opts.wait = d
	}
	if v := q.Get("index"); v != "" {
		idx, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return opts, errorf(http.StatusBadRequest, "Invalid index")
		}
		opts.minIndex = idx
	}
	_, stale := q["stale"]
	_, consistent := q["consistent"]
	switch {
	case stale && consistent:
		return opts, errorf(http.StatusBadRequest, "Cannot specify ?stale with ?consistent, conflicting semantics.")
	case stale:
		opts.consistency = consistencyStale
	case consistent:
		opts.consistency = consistencyConsistent
	default:
		opts.consistency = consistencyLeader
	}
	return opts, nil
}

// checkDatacenter refuses requests for another datacenter: sim has no WAN.
func (s *Server) checkDatacenter(r *http.Request) error {
	if dc := r.URL.Query().Get("dc"); dc != "" && dc != s.node.Datacenter {
		return errors.New("No path to datacenter")
	}
	return nil
}

// setMeta writes the query metadata headers of a read served by the leader.
// Catalog and health reads also report their effective consistency; KV,
// session and config reads do not, as in Consul.
func setMeta(w http.ResponseWriter, index uint64, consistency string) {
	h := w.Header()
	if consistency != "" {
		h.Set("X-Consul-Effective-Consistency", consistency)
	}
	h.Set("X-Consul-Index", strconv.FormatUint(index, 10))
	h.Set("X-Consul-Knownleader", "true")
	h.Set("X-Consul-Lastcontact", "0")
	h.Set("X-Consul-Query-Backend", "blocking-query")
}

// decodeJSON decodes a request body into v. An empty body leaves v as is,
// which is how Consul treats optional bodies.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	return nil
}

// flagSet reports whether a query parameter is present, with or without a
// value, and parses it as a boolean if it has one (?passing, ?passing=1,
// ?passing=false).
func flagSet(r *http.Request, name string) (bool, error) {
	q := r.URL.Query()
	if _, ok := q[name]; !ok {
		return false, nil
	}
	v := q.Get(name)
	if v == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errorf(http.StatusBadRequest, "Invalid value for ?%s", name)
	}
	return b, nil
}
