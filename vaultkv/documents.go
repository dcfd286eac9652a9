package vaultkv

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/secretsync/secretsync/state"
)

var _ state.Documents = (*Store)(nil)

// LoadDocument returns the named document (see state.Documents), kept at
// <Path>/documents/<name> in the field "document"; its revision is the KV
// version. Before the first save the error matches state.ErrNotFound.
func (s *Store) LoadDocument(ctx context.Context, name string) (*state.Document, error) {
	if err := state.CheckDocument(name, nil); err != nil {
		return nil, err
	}
	p := path.Join("documents", name)
	data, version, err := s.read(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("vaultkv: load document %q: %w", name, err)
	}
	if data == nil {
		return nil, fmt.Errorf("%w: document %q", state.ErrNotFound, name)
	}
	raw, ok := data["document"].(string)
	if !ok {
		return nil, &state.CorruptError{Path: s.data(p), Reason: "no document field"}
	}
	return &state.Document{Revision: int64(version), Data: []byte(raw)}, nil
}

// SaveDocument writes the named document with check-and-set on its KV
// version (see state.Documents): a stale doc.Revision gives an error
// matching state.ErrConflict. The token needs create and update on
// <mount>/data/<Path>/documents/* (StoreAccess.Documents in Policy).
func (s *Store) SaveDocument(ctx context.Context, name string, doc *state.Document) error {
	if doc == nil {
		return fmt.Errorf("vaultkv: save document %q: nil document", name)
	}
	if err := state.CheckDocument(name, doc.Data); err != nil {
		return err
	}
	v, err := s.write(ctx, path.Join("documents", name), map[string]any{"document": string(doc.Data)}, int(doc.Revision))
	if errors.Is(err, errCAS) {
		return fmt.Errorf("%w: document %q was saved by someone else since revision %d", state.ErrConflict, name, doc.Revision)
	}
	if err != nil {
		return fmt.Errorf("vaultkv: save document %q: %w", name, err)
	}
	doc.Revision = int64(v)
	return nil
}
