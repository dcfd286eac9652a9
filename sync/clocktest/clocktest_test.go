package clocktest_test

import (
	"slices"
	"testing"
	"time"

	"github.com/secretsync/secretsync/sync/clocktest"
)

// TestAdvance: functions run when their time comes, in order of time and
// then of scheduling, each seeing its own time; a stopped one never runs;
// one scheduled by another runs in the same Advance when its time comes;
// the clock never goes back.
func TestAdvance(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := clocktest.New(start)
	var got []string
	at := func(name string) func() {
		return func() { got = append(got, name+"@"+c.Now().Sub(start).String()) }
	}
	c.AfterFunc(3*time.Second, at("c"))
	c.AfterFunc(time.Second, at("a"))
	c.AfterFunc(time.Second, func() { at("b")(); c.AfterFunc(time.Second, at("nested")) })
	stop := c.AfterFunc(2*time.Second, at("stopped"))
	c.AfterFunc(time.Hour, at("later"))
	if !stop() || stop() {
		t.Fatal("stop did not report the first stop alone")
	}
	c.Advance(time.Second / 2)
	if len(got) != 0 || c.Timers() != 4 {
		t.Fatalf("before their time: ran %v, %d waiting", got, c.Timers())
	}
	c.Advance(5 * time.Second / 2)
	want := []string{"a@1s", "b@1s", "nested@2s", "c@3s"}
	if !slices.Equal(got, want) || !c.Now().Equal(start.Add(3*time.Second)) || c.Timers() != 1 {
		t.Fatalf("ran %v at %v, want %v at 3s; %d waiting", got, c.Now().Sub(start), want, c.Timers())
	}
	c.Set(start)
	if !c.Now().Equal(start.Add(3 * time.Second)) {
		t.Fatal("the clock went back")
	}
	done := make(chan struct{})
	if c.AfterFunc(0, func() { close(done) })() {
		t.Fatal("stop of a function due at once reported it stopped")
	}
	<-done
}
