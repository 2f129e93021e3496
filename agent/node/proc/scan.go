// Package proc finds the processes of every Nomad task on the host by their
// environment, and sums per-process counters over a task's processes where
// the task has no cgroup of its own to read.
//
// Every process Nomad starts for a task, whatever the driver (raw_exec,
// exec, docker, podman, java), carries NOMAD_ALLOC_ID and NOMAD_TASK_NAME
// in its environment, and so do its children, which inherit it. That is
// the one mark of a task that every driver and cgroup layout shares.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"

	"github.com/prometheus/procfs"
)

// DefaultRoot is where procfs is mounted.
const DefaultRoot = "/proc"

// Task names one task of one allocation, as its environment does.
type Task struct {
	AllocID string
	Name    string
}

// TaskOf reads a process's environment, the NUL-separated entries of
// /proc/<pid>/environ, for the task it belongs to. ok is false when the
// process is not a Nomad task's: either variable missing or empty.
func TaskOf(environ []byte) (t Task, ok bool) {
	for len(environ) > 0 {
		var kv []byte
		if i := bytes.IndexByte(environ, 0); i >= 0 {
			kv, environ = environ[:i], environ[i+1:]
		} else {
			kv, environ = environ, nil
		}
		if !bytes.HasPrefix(kv, nomadPrefix) {
			continue
		}
		if v, found := bytes.CutPrefix(kv, allocVar); found {
			t.AllocID = string(v)
		} else if v, found := bytes.CutPrefix(kv, taskVar); found {
			t.Name = string(v)
		}
	}
	return t, t.AllocID != "" && t.Name != ""
}

var (
	nomadPrefix = []byte("NOMAD_")
	allocVar    = []byte("NOMAD_ALLOC_ID=")
	taskVar     = []byte("NOMAD_TASK_NAME=")
)

// rescanEvery is how many scans pass before the Scanner forgets what it
// learnt of processes that are no task's and reads their environment
// again: a PID that was freed and reused between two scans would otherwise
// keep its old verdict. With a 10 s interval, that is every 5 minutes.
const rescanEvery = 30

// Scanner maps running processes to tasks. It is incremental: each Scan
// lists the PIDs under the procfs root and reads the environment of the
// PIDs it has not seen before only, so a scan of a host whose processes
// live long costs one directory listing. Not safe for concurrent use.
type Scanner struct {
	fs    procfs.FS
	root  string
	known map[int]*entry // every PID listed last time
	scans int
	names []string // scratch for the listing
	r     *Reader  // for a new PID's environ and stat
	// Unreadable counts processes whose environment could not be read,
	// other than those that exited: an agent that is not root cannot read
	// other users' environments, and misses their tasks.
	Unreadable int
}

// NewScanner returns a Scanner over the procfs at root (DefaultRoot when
// empty).
func NewScanner(root string) (*Scanner, error) {
	if root == "" {
		root = DefaultRoot
	}
	fs, err := procfs.NewFS(root)
	if err != nil {
		return nil, fmt.Errorf("open procfs at %s: %w", root, err)
	}
	return &Scanner{fs: fs, root: root, known: map[int]*entry{}, r: NewReader(root)}, nil
}

// entry is what a Scanner knows of one PID.
type entry struct {
	task Task // zero: no task's
	// ppid and start are a task's process's parent and start time when it
	// was found.
	ppid        int
	start       uint64
	haveParents bool
}

// Process returns the parent and start time of a task's process found by
// the last Scan, as read when it was found.
func (s *Scanner) Process(pid int) (ppid int, start uint64, ok bool) {
	e := s.known[pid]
	if e == nil || e.task == (Task{}) {
		return 0, 0, false
	}
	return e.ppid, e.start, e.haveParents
}

// Proc returns the procfs handle of a task's process found by the last
// Scan, for what is read of it once (its cgroups).
func (s *Scanner) Proc(pid int) (procfs.Proc, bool) {
	if e := s.known[pid]; e == nil || e.task == (Task{}) {
		return procfs.Proc{}, false
	}
	p, err := s.fs.Proc(pid)
	return p, err == nil
}

// Scan lists the running processes and returns the PIDs of each task's
// processes, sorted.
func (s *Scanner) Scan() (map[Task][]int, error) {
	d, err := os.Open(s.root)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	s.names, err = d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("list processes in %s: %w", s.root, err)
	}
	s.scans++
	if s.scans%rescanEvery == 0 {
		for pid, e := range s.known {
			if e.task == (Task{}) {
				delete(s.known, pid)
			}
		}
	}
	live := make(map[int]bool, len(s.names))
	out := map[Task][]int{}
	for _, name := range s.names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		live[pid] = true
		e := s.known[pid]
		if e == nil {
			e = s.identify(pid)
			s.known[pid] = e
		}
		if e.task != (Task{}) {
			out[e.task] = append(out[e.task], pid)
		}
	}
	for pid := range s.known {
		if !live[pid] {
			delete(s.known, pid)
		}
	}
	for _, pids := range out {
		slices.Sort(pids)
	}
	return out, nil
}

// Identify says which task a PID belongs to, reading its environment if
// the last Scan did not list it (a process started since). exists is false
// for a PID that has no process now.
func (s *Scanner) Identify(pid int) (t Task, exists bool) {
	if e := s.known[pid]; e != nil {
		return e.task, true
	}
	if _, err := os.Stat(filepath.Join(s.root, strconv.Itoa(pid))); err != nil {
		return Task{}, false
	}
	return s.identify(pid).task, true
}

// identify reads one process's environment, and for a task's process its
// parent and start time. A kernel thread has an empty environment, and a
// process that exited in between has none: both are no task's. These are
// read as the hot path's counters are (kfile, own parsers): on a host that
// forks often, every new PID costs them.
func (s *Scanner) identify(pid int) *entry {
	b, err := s.r.file(pid, "environ")
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ESRCH) {
			s.Unreadable++
		}
		return &entry{}
	}
	t, ok := TaskOf(b)
	if !ok {
		return &entry{}
	}
	e := &entry{task: t}
	if b, err := s.r.file(pid, "stat"); err == nil {
		if st, err := parseStat(b); err == nil {
			e.ppid, e.start, e.haveParents = st.ppid, st.start, true
		}
	}
	return e
}
