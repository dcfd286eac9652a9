// Package rendezvous picks, for a name, one of a set of members by
// rendezvous (highest random weight) hashing: every member gets a weight
// for the name from a hash of both, and the member with the highest weight
// is picked. Every process that knows the same members picks the same one
// without talking to the others; names spread evenly over the members; and
// when a member joins or leaves, only the names it gains or loses move.
package rendezvous

import "hash/fnv"

// Weight is member's weight for name: a hash of both, mixed so that the
// weights of one name over different members are independent.
func Weight(name, member string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(member))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(name))
	return mix(h.Sum64())
}

// mix is the finaliser of SplitMix64: it spreads FNV's weak low bits.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Pick returns the member with the highest weight for name, the smaller
// one on a tie; "" when members is empty. The order of members does not
// matter.
func Pick(name string, members []string) string {
	var best string
	var bestW uint64
	for i, m := range members {
		w := Weight(name, m)
		if i == 0 || w > bestW || (w == bestW && m < best) {
			best, bestW = m, w
		}
	}
	return best
}
