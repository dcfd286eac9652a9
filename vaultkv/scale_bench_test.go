package vaultkv_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// scaleEnv reads a benchmark setting from the environment.
func scaleEnv[T any](b *testing.B, name string, def T, parse func(string) (T, error)) T {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := parse(s)
	if err != nil {
		b.Fatalf("%s=%q: %v", name, s, err)
	}
	return v
}

// requestClock records when each request reached the proxy, and drops
// every request while down is set (an outage of Vault).
type requestClock struct {
	down atomic.Bool
	mu   gosync.Mutex
	at   []stamp
}

type stamp struct {
	t    time.Time
	poll bool // a poll (a metadata read), not a round's request
}

func (c *requestClock) intercept(r *http.Request) vaulttest.Verdict {
	poll := r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/metadata/")
	c.mu.Lock()
	c.at = append(c.at, stamp{time.Now(), poll})
	c.mu.Unlock()
	if c.down.Load() {
		return vaulttest.Drop
	}
	return vaulttest.Forward
}

// count returns how many requests arrived in [from, from+span).
func (c *requestClock) count(from time.Time, span time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.at {
		if d := s.t.Sub(from); d >= 0 && d < span {
			n++
		}
	}
	return n
}

// spread counts the requests (polls only, or all) that arrived in
// [from, from+span), in buckets of width, and returns the largest
// bucket's count over the mean, and the total.
func (c *requestClock) spread(from time.Time, span, width time.Duration, pollsOnly bool) (float64, int) {
	n := int(span / width)
	counts := make([]int, n)
	total := 0
	c.mu.Lock()
	for _, s := range c.at {
		if pollsOnly && !s.poll {
			continue
		}
		d := s.t.Sub(from)
		if d < 0 || d >= time.Duration(n)*width {
			continue
		}
		counts[d/width]++
		total++
	}
	c.mu.Unlock()
	if total == 0 {
		return 0, 0
	}
	return float64(slices.Max(counts)) / (float64(total) / float64(n)), total
}

// BenchmarkWatchScale starts many watched secret-path syncs against one
// Vault, through one connection, and measures what they cost together.
// Each sync is Bidirectional between its own memory side and its own
// secret, so that a change made in Vault by someone else is noticed by the
// poll (vaultkv's Notify) and carried to the memory side.
//
// Settings (environment): SECRETSYNC_SCALE_N syncs (default 20, so that
// CI stays fast), SECRETSYNC_SCALE_POLL poll interval (default 1s),
// SECRETSYNC_SCALE_CHANGES changes for the latency figures (default
// min(N, 200)). Run it once: -run '^$' -bench WatchScale -benchtime 1x;
// at 10,000 syncs and a 10 s poll it takes a few minutes.
//
// Metrics:
//   - first-round-s: from the first vaultkv.New until every sync has
//     finished its first round; create-s, until the last Watch started;
//   - floor-s: how long Vault takes to serve the first round's requests
//     (per sync, a read that finds nothing and a check-and-set write that
//     creates the secret) to a bare HTTP client with the same limit of 64
//     TCP connections, through a proxy like the syncs'; floor-direct-s,
//     the same straight to Vault; floor-api-s, the same through the
//     proxy with the syncs' client (a connection.Conn and the Vault API
//     package) and no engine; first-round/floor, how far the engine is
//     from floor-s (see firstRoundFloor);
//   - heap-B/sync, goroutines/sync: growth of the live heap (less an
//     estimate of the proxy's log of requests; heap-raw-B/sync with it)
//     and of the goroutine count per idle sync, from before the first New
//     to when every sync is idle (the goroutines include the HTTP
//     connections' own, about 0.03 per sync at 10,000);
//   - poll-max/mean, req-max/mean: over two poll intervals of idle
//     running, the busiest tenth of an interval (one second at a 10 s
//     poll) against the mean, for the polls and for every request;
//     outage-poll-max/mean and outage-req-max/mean: the same over the two
//     intervals that follow an outage of 1.5 intervals;
//   - polls/sync/interval: poll requests per sync per interval, idle;
//   - p50-ms, p99-ms (and p99/interval): from a write made in Vault by
//     another client until the sync has carried it to its memory side,
//     for changes spread over two intervals while every sync runs;
//     missed counts changes not carried within 3 intervals.
func BenchmarkWatchScale(b *testing.B) {
	n := scaleEnv(b, "SECRETSYNC_SCALE_N", 20, strconv.Atoi)
	poll := scaleEnv(b, "SECRETSYNC_SCALE_POLL", time.Second, time.ParseDuration)
	changes := scaleEnv(b, "SECRETSYNC_SCALE_CHANGES", min(n, 200), strconv.Atoi)
	srv := vaulttest.Get(b)
	for range b.N {
		watchScale(b, srv, n, poll, changes)
	}
}

func watchScale(b *testing.B, srv *vaulttest.Server, n int, poll time.Duration, changes int) {
	// The floor: the same requests, with no engine in the way, through a
	// proxy of their own (the syncs' proxy logs only the syncs' requests)
	// and straight to Vault.
	floor := firstRoundFloor(b, srv, srv.RequestProxy(b).URL(), n)
	floorDirect := firstRoundFloor(b, srv, srv.Addr, n)
	floorAPI := firstRoundFloorAPI(b, srv, srv.RequestProxy(b).URL(), n)

	proxy := srv.RequestProxy(b)
	clock := &requestClock{}
	proxy.Intercept(clock.intercept)
	mount := srv.NewMount(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, err := connection.New(ctx, connection.Config{
		Address: proxy.URL(), Token: &connection.Token{Token: connection.Credential{Value: srv.Token}},
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())

	// Latency bookkeeping: the change each sync waits for, and when it
	// was made.
	type change struct {
		value string
		at    time.Time
	}
	var (
		mu        gosync.Mutex
		pending   = map[int]change{}
		latencies []time.Duration
	)
	srcs := make([]*memory.Destination, n)
	var firstLeft gosync.WaitGroup
	firstLeft.Add(n)
	onRound := func(i int) func(*sync.Report, error) {
		first := true
		return func(*sync.Report, error) {
			if first {
				first = false
				firstLeft.Done()
			}
			mu.Lock()
			defer mu.Unlock()
			c, ok := pending[i]
			if !ok {
				return
			}
			if s, _ := srcs[i].Get("A"); s.Value == c.value {
				latencies = append(latencies, time.Since(c.at))
				delete(pending, i)
			}
		}
	}

	// The clock's record is allocated before the baseline, so that only
	// the syncs' own heap is counted; the proxy's log is subtracted below.
	clock.mu.Lock()
	clock.at = make([]stamp, 0, 16*n)
	clock.mu.Unlock()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutinesBefore := runtime.NumGoroutine()

	prof := startScaleProfile(b)
	var watching gosync.WaitGroup
	start := time.Now()
	for i := range n {
		kv, err := vaultkv.New(ctx, conn, &vaultkv.Options{Mount: mount, Path: fmt.Sprintf("app/%d", i), PollInterval: poll})
		if err != nil {
			b.Fatal(err)
		}
		srcs[i] = memory.New(map[string]string{"A": "a" + strconv.Itoa(i), "B": "b", "C": "c"})
		s, err := sync.New(sync.Config{
			Name: "s" + strconv.Itoa(i), Source: srcs[i], Destination: kv, Mode: sync.Bidirectional,
			Store: state.NewMemory(), OnRound: onRound(i),
		})
		if err != nil {
			b.Fatal(err)
		}
		watching.Go(func() { _ = s.Watch(ctx) })
	}
	created := time.Since(start)
	if !waitFor(&firstLeft, 10*time.Minute) {
		b.Fatal("the syncs did not all finish a first round within 10 minutes")
	}
	firstRound := time.Since(start)
	firstRequests := clock.count(start, firstRound)
	prof.firstRoundDone(b)

	// Idle: let the first polls and the rounds they cause pass.
	time.Sleep(poll + poll/2)
	runtime.GC()
	var idle runtime.MemStats
	runtime.ReadMemStats(&idle)
	goroutinesIdle := runtime.NumGoroutine()
	prof.idle(b)
	// What the proxy's log of requests holds: one vaulttest.Request (two
	// strings, 32 bytes) and the path it names (about 32 bytes) each.
	proxyLog := int64(proxy.Total()) * 64

	width := poll / 10
	idleFrom := time.Now()
	time.Sleep(2 * poll)
	pollSpread, polls := clock.spread(idleFrom, 2*poll, width, true)
	reqSpread, _ := clock.spread(idleFrom, 2*poll, width, false)

	// Latency: changes made in Vault by another client, spread over two
	// intervals.
	c := srv.Client(b)
	who := rand.Perm(n)[:changes]
	for k, i := range who {
		time.Sleep(time.Until(idleFrom.Add(2*poll + time.Duration(k)*2*poll/time.Duration(changes))))
		v := fmt.Sprintf("changed-%d", k)
		mu.Lock()
		pending[i] = change{v, time.Now()}
		mu.Unlock()
		if _, err := c.KVv2(mount).Put(ctx, fmt.Sprintf("app/%d", i), map[string]any{"A": v, "B": "b", "C": "c"}); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(3 * poll)
	for time.Now().Before(deadline) {
		mu.Lock()
		left := len(pending)
		mu.Unlock()
		if left == 0 {
			break
		}
		time.Sleep(poll / 20)
	}
	mu.Lock()
	missed := len(pending)
	lat := slices.Clone(latencies)
	mu.Unlock()
	slices.Sort(lat)

	// An outage of 1.5 intervals, then two intervals of recovery.
	time.Sleep(poll)
	clock.down.Store(true)
	time.Sleep(poll + poll/2)
	clock.down.Store(false)
	upAt := time.Now()
	time.Sleep(2 * poll)
	outPollSpread, _ := clock.spread(upAt, 2*poll, width, true)
	outReqSpread, _ := clock.spread(upAt, 2*poll, width, false)

	cancel()
	watching.Wait()

	b.ReportMetric(firstRound.Seconds(), "first-round-s")
	b.ReportMetric(floor.Seconds(), "floor-s")
	b.ReportMetric(floorDirect.Seconds(), "floor-direct-s")
	b.ReportMetric(floorAPI.Seconds(), "floor-api-s")
	b.ReportMetric(firstRound.Seconds()/floor.Seconds(), "first-round/floor")
	b.ReportMetric(created.Seconds(), "create-s")
	b.ReportMetric(float64(firstRequests)/float64(n), "first-round-req/sync")
	b.ReportMetric(float64(int64(idle.HeapAlloc)-int64(before.HeapAlloc)-proxyLog)/float64(n), "heap-B/sync")
	b.ReportMetric(float64(int64(idle.HeapAlloc)-int64(before.HeapAlloc))/float64(n), "heap-raw-B/sync")
	b.ReportMetric(float64(goroutinesIdle-goroutinesBefore)/float64(n), "goroutines/sync")
	b.ReportMetric(float64(polls)/float64(n)/2, "polls/sync/interval")
	b.ReportMetric(pollSpread, "poll-max/mean")
	b.ReportMetric(reqSpread, "req-max/mean")
	b.ReportMetric(outPollSpread, "outage-poll-max/mean")
	b.ReportMetric(outReqSpread, "outage-req-max/mean")
	if len(lat) > 0 {
		b.ReportMetric(float64(percentile(lat, 50).Milliseconds()), "p50-ms")
		b.ReportMetric(float64(percentile(lat, 99).Milliseconds()), "p99-ms")
		b.ReportMetric(float64(percentile(lat, 99))/float64(poll), "p99/interval")
	}
	b.ReportMetric(float64(missed), "missed")
}

// scaleProfile writes profiles of a scale run when
// SECRETSYNC_SCALE_PROFILE names a file prefix: PREFIX.cpu, PREFIX.mutex
// and PREFIX.block over the first round, PREFIX.heap when idle (sampled
// every SECRETSYNC_SCALE_MEMPROFILERATE bytes if set, for a finer picture
// of the heap of each sync).
type scaleProfile struct {
	prefix string
	cpu    *os.File
}

func startScaleProfile(b *testing.B) *scaleProfile {
	p := &scaleProfile{prefix: os.Getenv("SECRETSYNC_SCALE_PROFILE")}
	if p.prefix == "" {
		return p
	}
	if r := os.Getenv("SECRETSYNC_SCALE_MEMPROFILERATE"); r != "" {
		runtime.MemProfileRate, _ = strconv.Atoi(r) // slows the first round: for the heap alone
	}
	runtime.SetMutexProfileFraction(10)
	runtime.SetBlockProfileRate(int(time.Millisecond))
	f, err := os.Create(p.prefix + ".cpu")
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	p.cpu = f
	return p
}

func (p *scaleProfile) firstRoundDone(b *testing.B) {
	if p.prefix == "" {
		return
	}
	pprof.StopCPUProfile()
	_ = p.cpu.Close()
	p.write(b, "mutex")
	p.write(b, "block")
	runtime.SetMutexProfileFraction(0)
	runtime.SetBlockProfileRate(0)
}

func (p *scaleProfile) idle(b *testing.B) {
	if p.prefix != "" {
		p.write(b, "heap")
	}
}

func (p *scaleProfile) write(b *testing.B, name string) {
	f, err := os.Create(p.prefix + "." + name)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// percentile returns the p-th percentile of sorted, by nearest rank.
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}

// waitFor waits for wg, up to d, and reports whether it is done.
func waitFor(wg *gosync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}
