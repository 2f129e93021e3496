package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
)

// eventLogSize is how many event batches the stream can replay.
const eventLogSize = 4096

// event is one entry of Nomad's event stream.
type event struct {
	Topic      string
	Type       string
	Key        string
	Namespace  string
	FilterKeys []string
	Payload    map[string]any
	// snapshot, when Payload is nil, is the payload as copies that no
	// later write changes: it is encoded only when a stream sends it.
	snapshot map[string]any
}

// wireEvent is an event as it goes on the wire: Nomad's field order, payload
// encoded so later changes to the object do not leak into history.
type wireEvent struct {
	FilterKeys []string
	Index      uint64
	Key        string
	Namespace  string
	Payload    json.RawMessage
	Topic      string
	Type       string

	snapshot map[string]any
}

// encode fills in the payload of an event recorded as a snapshot.
func (e *wireEvent) encode() {
	if e.Payload == nil {
		e.Payload = encodePayload(e.Type, e.snapshot)
		e.snapshot = nil
	}
}

func encodePayload(typ string, payload map[string]any) json.RawMessage {
	b, err := json.Marshal(payload)
	if err != nil {
		panic(fmt.Sprintf("sim: encode %s event: %v", typ, err)) // payloads are api types
	}
	return b
}

type eventBatch struct {
	Events []wireEvent
	Index  uint64
}

// eventLog holds the most recent batches, one per index: at least size.
type eventLog struct {
	batches []eventBatch
	size    int
}

func newEventLog(size int) *eventLog { return &eventLog{size: size} }

// add records events at index idx, merging with an earlier batch of the same
// index so that one write is one batch, as in Nomad.
func (l *eventLog) add(_ time.Time, idx uint64, evs ...event) {
	wire := make([]wireEvent, 0, len(evs))
	for _, e := range evs {
		ns := e.Namespace
		if ns == "" && e.Topic != "Node" {
			ns = "default"
		}
		w := wireEvent{FilterKeys: e.FilterKeys, Index: idx, Key: e.Key, Namespace: ns, Topic: e.Topic, Type: e.Type, snapshot: e.snapshot}
		if e.Payload != nil {
			w.Payload = encodePayload(e.Type, e.Payload)
		}
		wire = append(wire, w)
	}
	if n := len(l.batches); n > 0 && l.batches[n-1].Index == idx {
		l.batches[n-1].Events = append(l.batches[n-1].Events, wire...)
		return
	}
	l.batches = append(l.batches, eventBatch{Index: idx, Events: wire})
	// Trimmed in halves, so that an add costs O(1) on average rather than
	// a copy of the whole log: between size and 2×size batches are kept.
	if len(l.batches) > 2*l.size {
		l.batches = append(l.batches[:0:0], l.batches[len(l.batches)-l.size:]...)
	}
}

// since returns the batches with an index at or above from.
func (l *eventLog) since(from uint64) []eventBatch {
	for i, b := range l.batches {
		if b.Index >= from {
			return l.batches[i:]
		}
	}
	return nil
}

// allocEvent is an allocation event; like Nomad, its payload leaves out the
// job, which has events of its own. Allocation events are most of the log,
// so the allocation is kept as a snapshot, encoded only if a stream sends
// it: a copy of what later writes change in place (task states, deployment
// health); the rest of an allocation never changes once placed.
func allocEvent(typ string, a *simAlloc) event {
	cp := *a.api
	cp.Job = nil
	if states := a.api.TaskStates; states != nil {
		cp.TaskStates = make(map[string]*api.TaskState, len(states))
		for name, ts := range states {
			tcp := *ts
			tcp.Events = ts.Events[:len(ts.Events):len(ts.Events)]
			cp.TaskStates[name] = &tcp
		}
	}
	if ds := a.api.DeploymentStatus; ds != nil {
		dcp := *ds
		cp.DeploymentStatus = &dcp
	}
	return event{
		Topic: "Allocation", Type: typ, Key: a.api.ID, Namespace: a.api.Namespace,
		FilterKeys: []string{a.api.JobID, a.api.DeploymentID},
		snapshot:   map[string]any{"Allocation": wireAlloc(&cp)},
	}
}

// topicFilter is the `topic` query of the event stream: Topic or Topic:Key,
// with * for any.
type topicFilter map[string][]string

func parseTopics(values []string) (topicFilter, error) {
	f := topicFilter{}
	if len(values) == 0 {
		f["*"] = []string{"*"}
		return f, nil
	}
	for _, v := range values {
		topic, key, found := strings.Cut(v, ":")
		if topic == "" {
			return nil, fmt.Errorf("invalid topic %q", v)
		}
		if !found {
			key = "*"
		}
		f[topic] = append(f[topic], key)
	}
	return f, nil
}

func (f topicFilter) allows(e *wireEvent, namespace string) bool {
	if namespace != "*" && e.Namespace != "" && e.Namespace != namespace {
		return false
	}
	for _, topic := range []string{e.Topic, "*"} {
		for _, key := range f[topic] {
			if key == "*" || key == e.Key {
				return true
			}
			for _, fk := range e.FilterKeys {
				if key == fk {
					return true
				}
			}
		}
	}
	return false
}

// eventStream serves `/v1/event/stream`: newline-delimited batches from
// ?index on (the closest retained if it is gone), filtered by ?topic and
// ?namespace, with a `{}` heartbeat at the start and whenever it is idle.
func (h *nomadAPI) eventStream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	topics, err := parseTopics(q["topic"])
	if err != nil {
		failText(w, http.StatusBadRequest, err.Error())
		return
	}
	var next uint64
	if s := q.Get("index"); s != "" {
		if next, err = strconv.ParseUint(s, 10, 64); err != nil {
			failText(w, http.StatusBadRequest, "Unable to parse index: "+err.Error())
			return
		}
	}
	ns := namespace(r)
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	heartbeat := []byte("{}\n")
	if _, err := w.Write(heartbeat); err != nil {
		return
	}
	if flusher != nil {
		flusher.Flush()
	}
	c := h.c
	idle := time.NewTicker(heartbeatInterval)
	defer idle.Stop()
	for {
		c.mu.Lock()
		var out [][]byte
		for _, b := range c.events.since(next) {
			var keep []wireEvent
			for i := range b.Events {
				if topics.allows(&b.Events[i], ns) {
					b.Events[i].encode()
					keep = append(keep, b.Events[i])
				}
			}
			next = b.Index + 1
			if len(keep) > 0 {
				out = append(out, append(mustJSON(eventBatch{Index: b.Index, Events: keep}), '\n'))
			}
		}
		ch := c.notify
		c.mu.Unlock()
		for _, line := range out {
			if _, err := w.Write(line); err != nil {
				return
			}
		}
		if len(out) > 0 && flusher != nil {
			flusher.Flush()
		}
		select {
		case <-ch:
		case <-idle.C:
			if _, err := w.Write(heartbeat); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		case <-r.Context().Done():
			return
		}
	}
}
