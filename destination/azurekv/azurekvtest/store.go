package azurekvtest

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The states of a secret's name.
const (
	StateActive     = "active"
	StateDeleting   = "deleting"   // soft delete in progress
	StateDeleted    = "deleted"    // soft-deleted: recoverable or purgeable
	StateRecovering = "recovering" // recovery in progress
	StatePurging    = "purging"    // purge in progress
)

type version struct {
	id          string
	value       string
	contentType string
	tags        map[string]string
	enabled     bool
	created     int64 // Unix seconds, as Key Vault keeps them
	updated     int64
	seq         int // order of creation, for the latest version
}

type secret struct {
	name     string // as first written
	versions map[string]*version
	latest   *version
	seq      int
	state    string
	until    time.Time // end of a transition
	deleted  int64     // Unix seconds of the soft delete
}

var namePattern = regexp.MustCompile(`^[0-9a-zA-Z-]+$`)

func validName(name string) bool {
	return len(name) >= 1 && len(name) <= MaxNameLength && namePattern.MatchString(name)
}

// settle completes a transition whose time has come; it reports whether
// the secret still exists. s.mu is held.
func (s *Server) settle(key string, sec *secret) bool {
	if sec.until.IsZero() || s.opts.Now().Before(sec.until) {
		return true
	}
	sec.until = time.Time{}
	switch sec.state {
	case StateDeleting:
		sec.state = StateDeleted
	case StateRecovering:
		sec.state = StateActive
	case StatePurging:
		delete(s.secrets, key)
		return false
	}
	return true
}

// lookup returns the secret named name (in any state) after settling it.
// s.mu is held.
func (s *Server) lookup(name string) *secret {
	key := strings.ToLower(name)
	sec := s.secrets[key]
	if sec == nil || !s.settle(key, sec) {
		return nil
	}
	return sec
}

// settleAll settles every secret. s.mu is held.
func (s *Server) settleAll() {
	for key, sec := range s.secrets {
		s.settle(key, sec)
	}
}

// transition puts sec in state until now+d, or in final at once when d
// is zero. s.mu is held.
func (s *Server) transition(key string, sec *secret, state, final string, d time.Duration) {
	if d <= 0 {
		if final == "" {
			delete(s.secrets, key)
			return
		}
		sec.state = final
		return
	}
	sec.state, sec.until = state, s.opts.Now().Add(d)
}

// addVersion writes a new version of name, creating the secret when it
// does not exist. s.mu is held; the caller has checked the name's state.
func (s *Server) addVersion(name, value, contentType string, tags map[string]string, enabled bool) *version {
	key := strings.ToLower(name)
	sec := s.secrets[key]
	if sec == nil {
		sec = &secret{name: name, versions: map[string]*version{}, state: StateActive}
		s.secrets[key] = sec
	}
	now := s.opts.Now().Unix()
	sec.seq++
	v := &version{id: newID(), value: value, contentType: contentType, tags: maps.Clone(tags),
		enabled: enabled, created: now, updated: now, seq: sec.seq}
	sec.versions[v.id] = v
	sec.latest = v
	return v
}

// Secret is one version of a secret, as the out-of-band helpers show it.
type Secret struct {
	Name        string // as first written
	Version     string
	Value       string
	ContentType string
	Tags        map[string]string
	Enabled     bool
	Created     time.Time // to the second
	Updated     time.Time
}

// DeletedSecret is a soft-deleted secret (its latest version).
type DeletedSecret struct {
	Secret
	DeletedDate        time.Time
	ScheduledPurgeDate time.Time
}

func (sec *secret) view(v *version) Secret {
	return Secret{Name: sec.name, Version: v.id, Value: v.value, ContentType: v.contentType,
		Tags: maps.Clone(v.tags), Enabled: v.enabled,
		Created: time.Unix(v.created, 0).UTC(), Updated: time.Unix(v.updated, 0).UTC()}
}

// Set writes a new version of name with value and tags, as another writer
// would; it fails as Key Vault would for a name that is not active or
// absent (soft-deleted, being deleted or recovered).
func (s *Server) Set(name, value string, tags map[string]string) (Secret, error) {
	if !validName(name) {
		return Secret{}, fmt.Errorf("azurekvtest: invalid name %q", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := s.lookup(name); sec != nil && sec.state != StateActive {
		return Secret{}, fmt.Errorf("azurekvtest: secret %s is %s", name, sec.state)
	}
	v := s.addVersion(name, value, "", tags, true)
	return s.lookup(name).view(v), nil
}

// Get returns the latest version of the active secret name.
func (s *Server) Get(name string) (Secret, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookup(name)
	if sec == nil || sec.state != StateActive {
		return Secret{}, false
	}
	return sec.view(sec.latest), true
}

// Versions returns every version of name, whatever its state, in the
// order they were written.
func (s *Server) Versions(name string) []Secret {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookup(name)
	if sec == nil {
		return nil
	}
	vs := slices.SortedFunc(maps.Values(sec.versions), func(a, b *version) int { return a.seq - b.seq })
	out := make([]Secret, len(vs))
	for i, v := range vs {
		out[i] = sec.view(v)
	}
	return out
}

// Names returns the names of the active secrets, sorted.
func (s *Server) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleAll()
	var out []string
	for _, sec := range s.secrets {
		if sec.state == StateActive {
			out = append(out, sec.name)
		}
	}
	slices.Sort(out)
	return out
}

// State returns the state of name: StateActive, StateDeleted and the
// others, or "" when the vault has no such name.
func (s *Server) State(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := s.lookup(name); sec != nil {
		return sec.state
	}
	return ""
}

// Delete soft-deletes the active secret name at once, as another writer
// would.
func (s *Server) Delete(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookup(name)
	if sec == nil || sec.state != StateActive {
		return ErrNotFound
	}
	sec.state, sec.deleted = StateDeleted, s.opts.Now().Unix()
	return nil
}

// Deleted returns the soft-deleted secret name (its latest version).
func (s *Server) Deleted(name string) (DeletedSecret, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookup(name)
	if sec == nil || sec.state != StateDeleted {
		return DeletedSecret{}, false
	}
	return DeletedSecret{Secret: sec.view(sec.latest), DeletedDate: time.Unix(sec.deleted, 0).UTC(),
		ScheduledPurgeDate: time.Unix(sec.deleted, 0).UTC().AddDate(0, 0, s.opts.RecoverableDays)}, true
}

// Purge removes the soft-deleted secret name at once.
func (s *Server) Purge(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookup(name)
	if sec == nil || sec.state != StateDeleted {
		return ErrNotFound
	}
	delete(s.secrets, strings.ToLower(name))
	return nil
}

// SetEnabled enables or disables the latest version of the active secret
// name; Key Vault refuses to return the value of a disabled version (403).
func (s *Server) SetEnabled(name string, enabled bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookup(name)
	if sec == nil || sec.state != StateActive {
		return ErrNotFound
	}
	sec.latest.enabled = enabled
	sec.latest.updated = s.opts.Now().Unix()
	return nil
}
