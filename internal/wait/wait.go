// Package wait polls a condition in tests that must wait for goroutines,
// processes or servers: a hang guard, never a timing assertion.
package wait

import (
	"testing"
	"time"
)

// Poll is how often the condition is checked.
const Poll = 20 * time.Millisecond

// Until checks cond every Poll until it holds, and fails tb, naming what
// it waited for, if it does not within limit of real time.
func Until(tb testing.TB, limit time.Duration, what string, cond func() bool) {
	tb.Helper()
	UntilEvery(tb, limit, Poll, what, cond)
}

// UntilEvery is Until checking every poll, for a cond that is costly to
// check (a request to a process under test, say).
func UntilEvery(tb testing.TB, limit, poll time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up after %v waiting for %s", limit, what)
		}
		time.Sleep(poll)
	}
}
