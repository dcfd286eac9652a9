package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	gosync "sync"
)

// SlogOptions adjusts the auditor returned by NewSlog.
type SlogOptions struct {
	// Level is the level of successful events; failures are logged at
	// slog.LevelError and flagged conflicts at slog.LevelWarn. The zero
	// value is slog.LevelInfo.
	Level slog.Level
	// Message is the log message of every record; default "audit".
	Message string
}

type slogAuditor struct {
	l    *slog.Logger
	opts SlogOptions
}

// NewSlog returns an Auditor that writes each event as one log record with
// the event's fields as attributes. A nil opts uses the defaults. The
// logger's handler decides the format and destination.
func NewSlog(l *slog.Logger, opts *SlogOptions) Auditor {
	a := &slogAuditor{l: l}
	if opts != nil {
		a.opts = *opts
	}
	if a.opts.Message == "" {
		a.opts.Message = "audit"
	}
	return a
}

func (a *slogAuditor) Audit(ctx context.Context, e Event) error {
	level := a.opts.Level
	switch e.Outcome {
	case Failure:
		level = slog.LevelError
	case Flagged:
		level = slog.LevelWarn
	}
	if !a.l.Enabled(ctx, level) {
		return nil
	}
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs, slog.String("type", string(e.Type)), slog.Time("event_time", e.Time), slog.String("outcome", string(e.Outcome)))
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("sync", e.Sync)
	add("run_id", e.RunID)
	add("key", e.Key)
	add("destination_key", e.DestinationKey)
	add("direction", string(e.Direction))
	add("operation", e.Operation)
	add("message", e.Message)
	if len(e.Attrs) > 0 {
		keys := make([]string, 0, len(e.Attrs))
		for k := range e.Attrs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		group := make([]any, 0, len(keys))
		for _, k := range keys {
			group = append(group, slog.String(k, e.Attrs[k]))
		}
		attrs = append(attrs, slog.Group("attrs", group...))
	}
	a.l.LogAttrs(ctx, level, a.opts.Message, attrs...)
	return nil
}

// JSONLines writes each event as one JSON object per line. It is safe for
// concurrent use: lines are never interleaved.
type JSONLines struct {
	mu gosync.Mutex
	w  io.Writer
}

// NewJSONLines returns an Auditor that writes to w.
func NewJSONLines(w io.Writer) *JSONLines { return &JSONLines{w: w} }

// Audit writes e as one line. An error from the writer is returned.
func (j *JSONLines) Audit(_ context.Context, e Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: encode event: %w", err)
	}
	b = append(b, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.w.Write(b); err != nil {
		return fmt.Errorf("audit: write event: %w", err)
	}
	return nil
}

// Recorder keeps events in memory, for tests. It is safe for concurrent
// use. The zero value is ready to use.
type Recorder struct {
	mu     gosync.Mutex
	events []Event
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{} }

// Audit records e.
func (r *Recorder) Audit(_ context.Context, e Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

// Events returns a copy of the events recorded so far, in order.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Filter returns the recorded events of type t, in order.
func (r *Recorder) Filter(t Type) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if e.Type == t {
			out = append(out, e)
		}
	}
	return out
}

// Count returns the number of recorded events of type t.
func (r *Recorder) Count(t Type) int { return len(r.Filter(t)) }

// Reset forgets every recorded event.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
}

// Fanout returns an Auditor that sends each event to every auditor in turn
// (nil ones are skipped). Every auditor is called even when one fails; the
// errors are joined.
func Fanout(auditors ...Auditor) Auditor {
	list := make([]Auditor, 0, len(auditors))
	for _, a := range auditors {
		if a != nil {
			list = append(list, a)
		}
	}
	return AuditorFunc(func(ctx context.Context, e Event) error {
		var errs []error
		for _, a := range list {
			if err := a.Audit(ctx, e); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}

// Prefix returns an Auditor that prepends prefix to each event's type before
// passing it to next: Prefix("HCV_", a) turns SECRET_SYNCED into
// HCV_SECRET_SYNCED, the names Vault's own sync uses. A type that already
// starts with prefix is left alone.
func Prefix(prefix string, next Auditor) Auditor {
	return AuditorFunc(func(ctx context.Context, e Event) error {
		if len(e.Type) < len(prefix) || string(e.Type[:len(prefix)]) != prefix {
			e.Type = Type(prefix) + e.Type
		}
		return next.Audit(ctx, e)
	})
}
