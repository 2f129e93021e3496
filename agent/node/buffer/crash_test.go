package buffer

import (
	"bufio"
	"bytes"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash test runs the writer in a child process (this test binary again,
// filtered to TestCrashChildWriter) so that it can be killed with SIGKILL
// while bbolt is in the middle of a commit, exactly as a node agent would be.
const (
	crashEnvPath     = "FORESIGHT_BUFFER_CRASH_PATH"
	crashEnvMaxBytes = "FORESIGHT_BUFFER_CRASH_MAX_BYTES"
)

// crashPayload is the payload of batch seq; its size varies so that commits
// touch a varying number of pages.
func crashPayload(seq uint64) []byte {
	h := fnv.New32a()
	fmt.Fprint(h, seq)
	return payloadOf(seq, 64+int(h.Sum32()%16384))
}

// TestCrashChildWriter is the child: it appends batches forever, reporting
// each committed sequence number ("C n") and each acknowledgement ("A n") on
// stdout only after the call returned.
func TestCrashChildWriter(t *testing.T) {
	path := os.Getenv(crashEnvPath)
	if path == "" {
		t.Skip("runs only as the child of TestCrashMidWriteKeepsCommittedBatches")
	}
	maxBytes, _ := strconv.ParseInt(os.Getenv(crashEnvMaxBytes), 10, 64)
	b, err := Open(path, Options{MaxBytes: maxBytes})
	if err != nil {
		fmt.Printf("E %v\n", err)
		os.Exit(3)
	}
	for {
		next := b.Stats().NextSeq
		seq, err := b.Append(crashPayload(next), Meta{Samples: 1, MinTime: t0, MaxTime: t0})
		if err != nil {
			fmt.Printf("E %v\n", err)
			os.Exit(3)
		}
		fmt.Printf("C %d\n", seq)
		if seq%3 == 0 {
			if err := b.Ack(seq - 1); err != nil {
				fmt.Printf("E %v\n", err)
				os.Exit(3)
			}
			fmt.Printf("A %d\n", seq-1)
		}
	}
}

func TestCrashMidWriteKeepsCommittedBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "buf.db")
	rng := rand.New(rand.NewPCG(1, 2))
	var lastCommitted, lastAcked, bufferID uint64
	for round := range 8 {
		// Every other round runs under a small size bound, so that the kill
		// can also land in the middle of an eviction.
		maxBytes := int64(DefaultMaxBytes)
		if round%2 == 1 {
			maxBytes = 256 << 10
		}
		committed, acked := runAndKill(t, path, maxBytes, 5+rng.IntN(40))
		if len(committed) == 0 {
			t.Fatalf("round %d: child committed nothing", round)
		}
		if committed[0] <= lastCommitted {
			t.Fatalf("round %d: seq %d reused (had committed up to %d)", round, committed[0], lastCommitted)
		}
		lastCommitted = committed[len(committed)-1]
		lastAcked = max(lastAcked, acked)

		b, err := Open(path, Options{MaxBytes: maxBytes})
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		st := b.Stats()
		if bufferID != 0 && st.BufferID != bufferID {
			t.Fatalf("round %d: buffer id changed from %x to %x", round, bufferID, st.BufferID)
		}
		bufferID = st.BufferID
		if st.NextSeq <= lastCommitted || st.LastSeq < lastCommitted {
			t.Fatalf("round %d: committed seq %d lost: stats %+v", round, lastCommitted, st)
		}
		if st.Acked < lastAcked {
			t.Fatalf("round %d: ack %d lost: stats %+v", round, lastAcked, st)
		}
		all, err := b.Since(time.Time{}, 0, 1<<30)
		if err != nil {
			t.Fatalf("round %d: read back: %v", round, err)
		}
		var size int64
		for i, bt := range all {
			if i > 0 && bt.Seq != all[i-1].Seq+1 {
				t.Fatalf("round %d: retained seqs not contiguous: %d after %d", round, bt.Seq, all[i-1].Seq)
			}
			if !bytes.Equal(bt.Payload, crashPayload(bt.Seq)) {
				t.Fatalf("round %d: batch %d payload corrupt", round, bt.Seq)
			}
			size += int64(keyLen + headerLen + len(bt.Payload))
		}
		if len(all) != st.Batches || size != st.Bytes || all[0].Seq != st.FirstSeq || all[len(all)-1].Seq != st.LastSeq {
			t.Fatalf("round %d: stats %+v disagree with %d batches of %d bytes read back", round, st, len(all), size)
		}
		// Every batch committed in this round is still there unless the size
		// bound evicted it, and eviction takes only a prefix.
		if committed[len(committed)-1] >= st.FirstSeq {
			for _, seq := range committed {
				if seq >= st.FirstSeq && (seq < all[0].Seq || seq > all[len(all)-1].Seq) {
					t.Fatalf("round %d: committed batch %d missing", round, seq)
				}
			}
		}
		seq, err := b.Append(crashPayload(st.NextSeq), Meta{Samples: 1, MinTime: t0, MaxTime: t0})
		if err != nil || seq != st.NextSeq || seq <= lastCommitted {
			t.Fatalf("round %d: append after reopen: seq %d err %v (next %d, last committed %d)", round, seq, err, st.NextSeq, lastCommitted)
		}
		lastCommitted = seq
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runAndKill starts the child writer, SIGKILLs it once it has reported after
// commits, and returns what it reported committed and the highest ack.
func runAndKill(t *testing.T, path string, maxBytes int64, after int) (committed []uint64, acked uint64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChildWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnvPath+"="+path, crashEnvMaxBytes+"="+strconv.FormatInt(maxBytes, 10))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		line := sc.Text()
		kind, num, ok := strings.Cut(line, " ")
		n, perr := strconv.ParseUint(num, 10, 64)
		switch {
		case !ok || kind == "E" || perr != nil:
			if kind == "E" || strings.HasPrefix(line, "---") || strings.HasPrefix(line, "FAIL") {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child writer: %s\n%s", line, stderr.String())
			}
			continue
		case kind == "C":
			committed = append(committed, n)
		case kind == "A":
			acked = n
		}
		if !killed && len(committed) >= after {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child writer exited before it was killed: %v\n%s", err, stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child writer ended with %v, not SIGKILL", err)
	}
	return committed, acked
}
