package proc

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/foresight-nomad/foresight/agent/node/kfile"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux architecture Nomad supports.
const userHZ = 100

// Field is a bit set naming which counters of a Process, or which rates of
// Rates, are present.
type Field uint8

// The counters a Process may carry.
const (
	// FieldCPU covers CPUTicks (from /proc/<pid>/stat).
	FieldCPU Field = 1 << iota
	// FieldIO covers ReadBytes and WriteBytes (from /proc/<pid>/io).
	FieldIO
	// FieldRSS covers RSSBytes (from /proc/<pid>/status).
	FieldRSS
)

// Process is one reading of one process's counters. Only the fields named
// in Present hold a value.
type Process struct {
	PID int
	// PPID is the parent, to which the kernel adds a child's CPU time and
	// I/O bytes when it reaps the child.
	PPID int
	// Start is when the process started, in clock ticks after boot: a PID
	// with another start is another process.
	Start uint64
	// Present names the counters read.
	Present Field
	// CPUTicks is the CPU time of the process and of the children it
	// reaped (utime + stime + cutime + cstime), in USER_HZ ticks.
	CPUTicks uint64
	// ReadBytes and WriteBytes are the bytes the process (with its reaped
	// children) made the block layer read and write.
	ReadBytes, WriteBytes uint64
	// RSSBytes is its resident memory (VmRSS).
	RSSBytes uint64
}

// Reader reads the counters of task processes, reusing one buffer. Not
// safe for concurrent use.
type Reader struct {
	root string
	kf   kfile.Reader
	path []byte // scratch for file paths
}

// NewReader returns a Reader over the procfs at root (DefaultRoot when
// empty).
func NewReader(root string) *Reader {
	if root == "" {
		root = DefaultRoot
	}
	return &Reader{root: root}
}

// Read reads the counters named in what of process pid into out; ppid and
// start are its parent and start time as last known. Reading FieldCPU
// reads /proc/<pid>/stat, which refreshes them. A process that exited
// answers an error wrapping fs.ErrNotExist or ESRCH; a counter that cannot
// be read is left out of Present, and the first such error is returned.
func (r *Reader) Read(pid, ppid int, start uint64, what Field, out *Process) error {
	*out = Process{PID: pid, PPID: ppid, Start: start}
	var errs []error
	if what&FieldCPU != 0 {
		if b, err := r.file(pid, "stat"); err != nil {
			errs = append(errs, err)
		} else if st, err := parseStat(b); err != nil {
			errs = append(errs, fmt.Errorf("pid %d: %w", pid, err))
		} else {
			out.PPID, out.Start = st.ppid, st.start
			out.CPUTicks = st.utime + st.stime + st.cutime + st.cstime
			out.Present |= FieldCPU
		}
	}
	if what&FieldIO != 0 {
		if b, err := r.file(pid, "io"); err != nil {
			errs = append(errs, err)
		} else if rb, wb, err := parseIO(b); err != nil {
			errs = append(errs, fmt.Errorf("pid %d: %w", pid, err))
		} else {
			out.ReadBytes, out.WriteBytes = rb, wb
			out.Present |= FieldIO
		}
	}
	if what&FieldRSS != 0 {
		if b, err := r.file(pid, "status"); err != nil {
			errs = append(errs, err)
		} else if rss, ok, err := parseRSS(b); err != nil {
			errs = append(errs, fmt.Errorf("pid %d: %w", pid, err))
		} else if ok {
			out.RSSBytes = rss
			out.Present |= FieldRSS
		}
	}
	return errors.Join(errs...)
}

// file reads /proc/<pid>/<name>.
func (r *Reader) file(pid int, name string) ([]byte, error) {
	r.path = append(r.path[:0], r.root...)
	r.path = append(r.path, '/')
	r.path = strconv.AppendInt(r.path, int64(pid), 10)
	r.path = append(r.path, '/')
	r.path = append(r.path, name...)
	return r.kf.Read(string(r.path))
}

// Rates are what a task's processes did over the interval between two
// readings, summed over them. Only the fields named in Present hold a value.
type Rates struct {
	// Present names the rates computed.
	Present Field
	// CPUCores is the CPU time used per second of the interval: 1 is one
	// core busy all the time.
	CPUCores float64
	// ReadBPS and WriteBPS are the bytes per second read from and written
	// to block devices.
	ReadBPS, WriteBPS float64
	// RSSBytes is the processes' resident memory at the second reading,
	// summed (pages shared between them count once per process, as Nomad
	// counts them for raw_exec).
	RSSBytes float64
}

// Tree turns successive readings of one task's processes into rates. The
// counters of a process include those of the children it reaped, so a
// child that exits and is reaped by a process of the task keeps counting
// through its parent; a process that leaves otherwise (reaped by a parent
// outside the task) takes with it only what it did since its last reading,
// which is lost rather than guessed. A counter that cannot be read for
// every process of the task, or a sum that went backwards, yields no rate
// for that interval. Use one Tree per task; the zero value is ready.
type Tree struct {
	prev   map[int]Process
	prevAt time.Time
	have   bool
}

// Update records the readings procs taken at at, one per live process of
// the task, and returns the rates since the previous call.
func (t *Tree) Update(at time.Time, procs []Process) Rates {
	prev, prevAt, had := t.prev, t.prevAt, t.have
	cur := make(map[int]Process, len(procs))
	for _, p := range procs {
		cur[p.PID] = p
	}
	t.prev, t.prevAt, t.have = cur, at, true

	var out Rates
	if len(procs) == 0 {
		return out
	}
	all := FieldCPU | FieldIO | FieldRSS
	for _, p := range procs {
		all &= p.Present
	}
	if all&FieldRSS != 0 {
		for _, p := range procs {
			out.RSSBytes += float64(p.RSSBytes)
		}
		out.Present |= FieldRSS
	}
	if !had || !at.After(prevAt) {
		return out
	}
	secs := at.Sub(prevAt).Seconds()
	if all&FieldCPU != 0 {
		if d, ok := delta(prev, cur, FieldCPU, func(p Process) uint64 { return p.CPUTicks }); ok {
			out.CPUCores = d / userHZ / secs
			out.Present |= FieldCPU
		}
	}
	if all&FieldIO != 0 {
		r, okR := delta(prev, cur, FieldIO, func(p Process) uint64 { return p.ReadBytes })
		w, okW := delta(prev, cur, FieldIO, func(p Process) uint64 { return p.WriteBytes })
		if okR && okW {
			out.ReadBPS, out.WriteBPS = r/secs, w/secs
			out.Present |= FieldIO
		}
	}
	return out
}

// delta is how much a counter grew over the task's processes between two
// readings: the sum now, less the sum then of the processes whose counts
// are still in the task, because they are alive or were reaped by a
// process of the task that is.
func delta(prev, cur map[int]Process, f Field, get func(Process) uint64) (float64, bool) {
	var now, then uint64
	for _, p := range cur {
		now += get(p)
	}
	for pid, p := range prev {
		if c, alive := cur[pid]; !alive || c.Start != p.Start {
			// Gone, or its PID reused: its counts stayed in the task only if
			// its parent, still a process of the task, reaped it.
			if _, reaped := cur[p.PPID]; !reaped {
				continue
			}
		}
		if p.Present&f == 0 {
			return 0, false
		}
		then += get(p)
	}
	if now < then {
		return 0, false
	}
	return float64(now - then), true
}

// Reset forgets the baseline, so the next reading yields no rates.
func (t *Tree) Reset() { *t = Tree{} }
