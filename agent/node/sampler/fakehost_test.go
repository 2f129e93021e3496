package sampler

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// hostNS is the network namespace a fake host's init runs in.
const hostNS = "net:[4026531840]"

// layHost lays a recorded snapshot (proc/ and sys/fs/cgroup/, as in
// ../shared/fixtures/hosts) at dst as a fake root, replacing what was there,
// so that one HostExtra can read several snapshots at the same paths. A
// recording keeps only the NOMAD_* variables of each environment, in
// environ.nomad.json; they become the environ file the agent reads. It
// records no namespace links: ownNS lists the PIDs that ran in a network
// namespace of their own (the recording's README says which), and every
// other one, and init, gets the host's.
func layHost(t testing.TB, snapshot, dst string, ownNS map[int]string) (procRoot, cgroupRoot string) {
	t.Helper()
	for _, d := range []string{"proc", "sys"} {
		if err := os.RemoveAll(filepath.Join(dst, d)); err != nil {
			t.Fatal(err)
		}
	}
	err := filepath.Walk(snapshot, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(snapshot, path)
		top := strings.SplitN(rel, string(filepath.Separator), 2)[0]
		if top != "proc" && top != "sys" {
			return nil
		}
		out := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if info.Name() == "environ.nomad.json" {
			var env map[string]string
			if err := json.Unmarshal(b, &env); err != nil {
				return err
			}
			var sb strings.Builder
			for k, v := range env {
				sb.WriteString(k + "=" + v + "\x00")
			}
			out, b = filepath.Join(filepath.Dir(out), "environ"), []byte(sb.String())
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	procRoot = filepath.Join(dst, "proc")
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		t.Fatal(err)
	}
	link := func(pid, target string) {
		dir := filepath.Join(procRoot, pid, "ns")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(dir, "net")); err != nil {
			t.Fatal(err)
		}
	}
	link("1", hostNS)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == 1 {
			continue
		}
		ns := hostNS
		if own, ok := ownNS[pid]; ok {
			ns = own
		}
		link(e.Name(), ns)
	}
	return procRoot, filepath.Join(dst, "sys", "fs", "cgroup")
}
