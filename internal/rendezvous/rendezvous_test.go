package rendezvous

import (
	"fmt"
	"slices"
	"testing"
)

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint("sync-", i)
	}
	return out
}

func members(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint("replica-", i)
	}
	return out
}

// Names spread evenly: with 10,000 names each of N members gets its share
// within 10% (the binomial spread of random hashing is about 3%).
func TestPickSpreads(t *testing.T) {
	ns := names(10000)
	for _, n := range []int{2, 3, 5, 10} {
		ms := members(n)
		count := map[string]int{}
		for _, name := range ns {
			count[Pick(name, ms)]++
		}
		share := float64(len(ns)) / float64(n)
		for _, m := range ms {
			if c := float64(count[m]); c < 0.9*share || c > 1.1*share {
				t.Errorf("%d members: %s got %v names, want %.0f±10%% (all: %v)", n, m, c, share, count)
			}
		}
	}
}

// The pick does not depend on the order of the members.
func TestPickOrder(t *testing.T) {
	ms := members(5)
	rev := slices.Clone(ms)
	slices.Reverse(rev)
	for _, name := range names(200) {
		if a, b := Pick(name, ms), Pick(name, rev); a != b {
			t.Fatalf("%s: %s, reversed %s", name, a, b)
		}
	}
	if got := Pick("x", nil); got != "" {
		t.Fatalf("no members: %q", got)
	}
	if got := Pick("x", []string{"only"}); got != "only" {
		t.Fatalf("one member: %q", got)
	}
}

// A member that joins takes about its share, and only names move to it;
// a member that leaves gives up only its own names, spread over the rest.
func TestPickMinimalMovement(t *testing.T) {
	ns := names(1200)
	three, four := members(3), members(4)
	joined := four[3]
	moved := 0
	for _, name := range ns {
		before, after := Pick(name, three), Pick(name, four)
		if before != after {
			moved++
			if after != joined {
				t.Fatalf("%s moved from %s to %s, not to the member that joined", name, before, after)
			}
		}
	}
	if share := len(ns) / 4; moved < share*85/100 || moved > share*115/100 {
		t.Fatalf("%d names moved to the member that joined, want about %d", moved, share)
	}

	left := three[1]
	rest := []string{three[0], three[2]}
	gained := map[string]int{}
	for _, name := range ns {
		before, after := Pick(name, three), Pick(name, rest)
		switch {
		case before == left:
			gained[after]++
		case before != after:
			t.Fatalf("%s moved from %s to %s, though %s left", name, before, after, left)
		}
	}
	if gained[rest[0]] < 150 || gained[rest[1]] < 150 {
		t.Fatalf("the names of the member that left went to %v, want them spread over both", gained)
	}
}
