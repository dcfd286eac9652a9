package vaultkv

import (
	"container/heap"
	"context"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/secretsync/secretsync/connection"
)

// watcher is one Notify call: its place in its connection's poll schedule
// and what its last poll saw.
type watcher struct {
	kv       *KV
	ctx      context.Context
	ch       chan struct{}
	interval time.Duration
	// due and index are guarded by the poller's mu; index is -1 once the
	// watcher has left the schedule.
	due   time.Time
	index int
	// busy is set while a poll is in flight (from when run takes its
	// slot); last and known belong to that poll.
	busy  atomic.Bool
	last  string
	known bool
}

// maxPollsInFlight bounds the polls of one connection in flight at once.
const maxPollsInFlight = 32

// poller runs the polls of every watcher of one connection, from one
// goroutine that lives while the connection has watchers.
type poller struct {
	conn  *connection.Conn
	epoch time.Time     // phases count from here
	wake  chan struct{} // a watcher was added
	slots chan struct{} // polls in flight

	mu      gosync.Mutex
	queue   watchQueue
	placed  uint64 // watchers placed so far: picks the next phase
	running bool
	// starved is set while a due poll waits for a slot.
	starved atomic.Bool
}

// pollers holds the poller of each connection that has watchers.
var pollers = struct {
	gosync.Mutex
	m map[*connection.Conn]*poller
}{m: map[*connection.Conn]*poller{}}

// golden is the fractional part of the golden ratio: the phases k*golden
// (mod 1) spread evenly over the interval for every count k of watchers.
const golden = 0.6180339887498949

// phase returns where in the interval, as a fraction in [0, 1), the k-th
// watcher of a connection polls.
func phase(k uint64) float64 {
	f := float64(k) * golden
	return f - float64(int64(f))
}

// pollerOf adds w to the schedule of conn's poller, starting the poller if
// needed, and returns it.
func pollerOf(conn *connection.Conn, w *watcher) *poller {
	pollers.Lock()
	defer pollers.Unlock()
	p := pollers.m[conn]
	if p == nil {
		p = &poller{conn: conn, epoch: time.Now(), wake: make(chan struct{}, 1), slots: make(chan struct{}, maxPollsInFlight)}
		pollers.m[conn] = p
	}
	p.mu.Lock()
	w.due = p.epoch.Add(time.Duration(phase(p.placed) * float64(w.interval)))
	p.placed++
	if now := time.Now(); w.due.Before(now) {
		w.due = w.due.Add((now.Sub(w.due)/w.interval + 1) * w.interval)
	}
	heap.Push(&p.queue, w)
	first := p.queue[0] == w
	if !p.running {
		p.running = true
		go p.run()
	}
	p.mu.Unlock()
	if first {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	return p
}

// remove takes w off the schedule; a poll of w in flight ends with its
// context. The poller is woken when it has no watcher left, to end.
func (p *poller) remove(w *watcher) {
	p.mu.Lock()
	if w.index >= 0 {
		heap.Remove(&p.queue, w.index)
	}
	empty := len(p.queue) == 0
	p.mu.Unlock()
	if empty {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// run starts the polls that are due, each on a goroutine of its own once
// one of the connection's maxPollsInFlight slots is free, and returns once
// no watcher is left. A poll that could not start within a tenth of its
// interval (at least lateFloor) of its time is skipped: after an outage or
// a stall, the polls that fell due meanwhile do not all run at once. No
// goroutine waits for a slot: at thousands of watchers, polls waiting
// behind a busy connection would otherwise each hold one.
func (p *poller) run() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		p.mu.Lock()
		if len(p.queue) == 0 {
			p.mu.Unlock()
			if p.stopIfIdle() {
				return
			}
			p.mu.Lock()
		}
		now := time.Now()
		starved := false
		for len(p.queue) > 0 && !p.queue[0].due.After(now) {
			w := p.queue[0]
			if now.Sub(w.due) <= tolerance(w.interval) && w.ctx.Err() == nil && !w.busy.Load() {
				if !p.takeSlot() {
					// Every slot is taken: wait for one (a poll that ends
					// wakes the poller) or until this poll is too late.
					starved = true
					break
				}
				w.busy.Store(true)
				go p.poll(w)
			}
			// The next poll keeps its place in the interval, even when
			// this one is skipped or late.
			w.due = w.due.Add((now.Sub(w.due)/w.interval + 1) * w.interval)
			heap.Fix(&p.queue, 0)
		}
		p.starved.Store(starved)
		wait := time.Hour
		if len(p.queue) > 0 {
			wait = time.Until(p.queue[0].due)
			if starved {
				wait = time.Until(p.queue[0].due.Add(tolerance(p.queue[0].interval))) + time.Millisecond
			}
		}
		p.mu.Unlock()
		t.Reset(wait)
		select {
		case <-t.C:
		case <-p.wake:
		}
	}
}

// lateFloor is the least lateness for which a poll is skipped: short
// intervals (tests poll every few milliseconds) must not lose their polls
// to a busy scheduler.
const lateFloor = 250 * time.Millisecond

// tolerance is how late a poll of the interval may start.
func tolerance(interval time.Duration) time.Duration { return max(interval/10, lateFloor) }

// takeSlot takes a slot for a poll if one is free. When none is, it marks
// the poller starved first, and tries once more, so that a slot freed
// meanwhile is taken or wakes the poller.
func (p *poller) takeSlot() bool {
	select {
	case p.slots <- struct{}{}:
		return true
	default:
	}
	p.starved.Store(true)
	select {
	case p.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// poll runs the poll of w in the slot that run took for it, and wakes the
// poller if it waits for a slot.
func (p *poller) poll(w *watcher) {
	w.poll()
	<-p.slots
	if p.starved.Load() {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// stopIfIdle ends the poller when it has no watcher left, and reports
// whether it did.
func (p *poller) stopIfIdle() bool {
	pollers.Lock()
	defer pollers.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) > 0 {
		return false
	}
	p.running = false
	delete(pollers.m, p.conn)
	return true
}

// watchQueue is a heap of watchers by the time of their next poll.
type watchQueue []*watcher

func (q watchQueue) Len() int           { return len(q) }
func (q watchQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q watchQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}

func (q *watchQueue) Push(x any) {
	w := x.(*watcher)
	w.index = len(*q)
	*q = append(*q, w)
}

func (q *watchQueue) Pop() any {
	old := *q
	w := old[len(old)-1]
	old[len(old)-1] = nil
	w.index = -1
	*q = old[:len(old)-1]
	return w
}
