package conflict_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/conflict"
)

// states a side can be in, relative to three values a, b and c.
var states = []string{"", "a", "b", "c"} // "" is absent

func side(v string) conflict.Side {
	if v == "" {
		return conflict.Absent
	}
	return conflict.Present(sha256.Sum256([]byte(v)))
}

// oracle states the rules of the design in terms of values, independently of
// the implementation's order of checks.
func oracle(base, src, dst string) conflict.Class {
	srcMoved, dstMoved := src != base, dst != base
	switch {
	case !srcMoved && !dstMoved:
		return conflict.Unchanged
	case srcMoved && !dstMoved:
		return conflict.SourceChanged
	case dstMoved && !srcMoved:
		return conflict.DestinationChanged
	}
	// Both moved.
	if src == dst {
		return conflict.Converged // same value, or deleted on both
	}
	if base == "" {
		return conflict.BothCreated
	}
	if src == "" {
		return conflict.SourceDeleted
	}
	if dst == "" {
		return conflict.DestinationDeleted
	}
	return conflict.BothChanged
}

func TestClassifyExhaustive(t *testing.T) {
	seen := map[conflict.Class]int{}
	for _, b := range states {
		for _, s := range states {
			for _, d := range states {
				got := conflict.Classify(side(b), side(s), side(d))
				if want := oracle(b, s, d); got != want {
					t.Errorf("Classify(base=%q, src=%q, dst=%q) = %v, want %v", b, s, d, got, want)
				}
				seen[got]++
				// Symmetry: swapping the sides swaps the one-sided classes.
				if mirror := conflict.Classify(side(b), side(d), side(s)); mirror != swap(got) {
					t.Errorf("Classify(%q, %q, %q) mirrored = %v, want %v", b, d, s, mirror, swap(got))
				}
			}
		}
	}
	if len(seen) != 8 {
		t.Errorf("only %d classes reached: %v", len(seen), seen)
	}
	if total := len(states) * len(states) * len(states); total != 64 {
		t.Fatalf("%d cases", total)
	}
}

func swap(c conflict.Class) conflict.Class {
	switch c {
	case conflict.SourceChanged:
		return conflict.DestinationChanged
	case conflict.DestinationChanged:
		return conflict.SourceChanged
	case conflict.SourceDeleted:
		return conflict.DestinationDeleted
	case conflict.DestinationDeleted:
		return conflict.SourceDeleted
	}
	return c
}

func TestClassifyNamedCases(t *testing.T) {
	for _, tt := range []struct {
		base, src, dst string
		want           conflict.Class
		conflict       bool
	}{
		{"a", "a", "a", conflict.Unchanged, false},
		{"", "", "", conflict.Unchanged, false},
		{"a", "b", "a", conflict.SourceChanged, false},
		{"a", "", "a", conflict.SourceChanged, false},
		{"", "a", "", conflict.SourceChanged, false},
		{"a", "a", "b", conflict.DestinationChanged, false},
		{"a", "b", "b", conflict.Converged, false},
		{"a", "", "", conflict.Converged, false}, // deleted on both: not a conflict
		{"", "a", "a", conflict.Converged, false},
		{"a", "b", "c", conflict.BothChanged, true},
		{"", "a", "b", conflict.BothCreated, true},
		{"a", "", "b", conflict.SourceDeleted, true},
		{"a", "b", "", conflict.DestinationDeleted, true},
	} {
		got := conflict.Classify(side(tt.base), side(tt.src), side(tt.dst))
		if got != tt.want || got.IsConflict() != tt.conflict {
			t.Errorf("(%q,%q,%q) = %v (conflict %v), want %v (conflict %v)", tt.base, tt.src, tt.dst, got, got.IsConflict(), tt.want, tt.conflict)
		}
	}
}

func TestPolicies(t *testing.T) {
	c := conflict.Conflict{Key: "K", Class: conflict.BothChanged}
	if got := conflict.Policy(nil).Resolve(c); got.Kind() != conflict.KindFlag {
		t.Errorf("nil policy = %v, want flag", got)
	}
	for _, tt := range []struct {
		p    conflict.Policy
		want conflict.Kind
	}{
		{conflict.FlagAll, conflict.KindFlag},
		{conflict.PreferSource, conflict.KindKeepSource},
		{conflict.PreferDestination, conflict.KindKeepDestination},
	} {
		if got := tt.p.Resolve(c).Kind(); got != tt.want {
			t.Errorf("policy = %v, want %v", got, tt.want)
		}
	}
	custom := conflict.Policy(func(c conflict.Conflict) conflict.Resolution {
		if strings.HasPrefix(c.Key, "DB_") {
			return conflict.KeepDestination
		}
		return conflict.UseValue("merged")
	})
	if got := custom.Resolve(conflict.Conflict{Key: "DB_URL"}); got.Kind() != conflict.KindKeepDestination {
		t.Errorf("custom DB_ = %v", got)
	}
	got := custom.Resolve(conflict.Conflict{Key: "X"})
	if v, ok := got.Value(); !ok || v != "merged" || got.Kind() != conflict.KindUseValue {
		t.Errorf("custom X = %v %q %v", got, v, ok)
	}
	if _, ok := conflict.KeepSource.Value(); ok {
		t.Error("KeepSource has a value")
	}
}

func TestResolutionNeverPrintsValue(t *testing.T) {
	r := conflict.UseValue("hunter2-canary")
	for _, s := range []string{r.String(), fmt.Sprintf("%v %+v %#v %s", r, r, r, r)} {
		if strings.Contains(s, "hunter2") {
			t.Fatalf("value printed: %s", s)
		}
	}
	if b, err := json.Marshal(struct{ R conflict.Resolution }{r}); err != nil || strings.Contains(string(b), "hunter2") {
		t.Fatalf("value marshalled: %s %v", b, err)
	}
}

func TestMarshalling(t *testing.T) {
	for c := conflict.Unchanged; c <= conflict.DestinationDeleted; c++ {
		b, err := c.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back conflict.Class
		if err := back.UnmarshalText(b); err != nil || back != c || string(b) != c.String() {
			t.Errorf("%v -> %s -> %v, %v", c, b, back, err)
		}
	}
	if _, err := conflict.Class(200).MarshalText(); err == nil {
		t.Error("unknown class marshalled")
	}
	var c conflict.Class
	if err := c.UnmarshalText([]byte("nope")); err == nil {
		t.Error("unknown class name accepted")
	}
	fp := sha256.Sum256([]byte("x"))
	b, _ := conflict.Fingerprint(fp).MarshalText()
	var back conflict.Fingerprint
	if err := back.UnmarshalText(b); err != nil || back != conflict.Fingerprint(fp) {
		t.Errorf("fingerprint round trip: %v", err)
	}
	for _, bad := range []string{"", "short", strings.Repeat("*", len(b))} {
		if err := back.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("fingerprint %q accepted", bad)
		}
	}
}

// BenchmarkClassify1M classifies one million keys, with a mix of classes as
// a round sees them. Target: under 1 s per operation.
func BenchmarkClassify1M(b *testing.B) {
	const n = 1_000_000
	type in struct{ base, src, dst conflict.Side }
	ins := make([]in, n)
	vals := [...]conflict.Side{conflict.Absent, side("a"), side("b"), side("c")}
	for i := range ins {
		// Mostly unchanged keys, as in a real round.
		if i%10 != 0 {
			ins[i] = in{vals[1], vals[1], vals[1]}
			continue
		}
		ins[i] = in{vals[i%4], vals[(i/4)%4], vals[(i/16)%4]}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var counts [8]int
	for range b.N {
		for _, x := range ins {
			counts[conflict.Classify(x.base, x.src, x.dst)]++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/key")
	_ = counts
}
