package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/foresight-nomad/foresight/agent/node/kfile"
)

// DefaultProcRoot is where procfs is mounted.
const DefaultProcRoot = "/proc"

// DefaultHostRef is the process whose network namespace counts as the
// host's: init.
const DefaultHostRef = "1"

// ErrSharedNamespace reports that a process runs in the host's network
// namespace, whose counters are the whole host's and not the task's.
var ErrSharedNamespace = errors.New("process shares the host network namespace")

// Reader reads network counters through a procfs. It reuses one buffer and
// is not safe for concurrent use.
type Reader struct {
	procRoot string
	hostRef  string
	kf       kfile.Reader
}

// NewReader returns a Reader over the procfs at procRoot (DefaultProcRoot
// when empty). hostRef names the process, under procRoot, whose network
// namespace is the host's: DefaultHostRef when empty. Reading pid 1's
// namespace needs the agent to run as root (or with CAP_SYS_PTRACE); an
// agent that runs in the host namespace without that may pass "self".
func NewReader(procRoot, hostRef string) *Reader {
	if procRoot == "" {
		procRoot = DefaultProcRoot
	}
	if hostRef == "" {
		hostRef = DefaultHostRef
	}
	return &Reader{procRoot: procRoot, hostRef: hostRef, kf: kfile.Reader{Max: maxFile}}
}

// OwnNamespace reports whether pid runs in a network namespace of its own,
// rather than the host's, by comparing the targets of their ns/net links
// ("net:[4026532301]"). An allocation's namespace does not change while it
// runs, so callers may keep the answer per allocation.
func (r *Reader) OwnNamespace(pid int) (bool, error) {
	host, err := os.Readlink(filepath.Join(r.procRoot, r.hostRef, "ns", "net"))
	if err != nil {
		return false, fmt.Errorf("read host network namespace: %w", err)
	}
	own, err := os.Readlink(filepath.Join(r.procRoot, strconv.Itoa(pid), "ns", "net"))
	if err != nil {
		return false, fmt.Errorf("read network namespace of pid %d: %w", pid, err)
	}
	return own != host, nil
}

// Counters reads the traffic of the network namespace pid runs in. It does
// not check which namespace that is; Read does.
func (r *Reader) Counters(pid int) (Counters, error) {
	path := filepath.Join(r.procRoot, strconv.Itoa(pid), "net", "dev")
	b, err := r.readFile(path)
	if err != nil {
		return Counters{}, err
	}
	c, err := ParseDev(b)
	if err != nil {
		return Counters{}, fmt.Errorf("parse %s: %w", path, err)
	}
	return c, nil
}

// Read returns the traffic of pid's network namespace, or an error wrapping
// ErrSharedNamespace when pid runs in the host's namespace: the host's
// totals are not the task's, so there is nothing to report.
func (r *Reader) Read(pid int) (Counters, error) {
	own, err := r.OwnNamespace(pid)
	if err != nil {
		return Counters{}, err
	}
	if !own {
		return Counters{}, fmt.Errorf("pid %d: %w", pid, ErrSharedNamespace)
	}
	return r.Counters(pid)
}

// readFile reads a whole procfs file into the Reader's buffer.
func (r *Reader) readFile(path string) ([]byte, error) {
	b, err := r.kf.Read(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// maxFile bounds one net/dev file: a namespace with thousands of interfaces
// stays well below it.
const maxFile = 4 << 20
