package ledger

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
)

// index finds durable entries by source identity (deduplication) and the latest durable entry
// of a conversation (chaining): through the store's own indexes when it has them
// (store.IdentityIndex, store.ConversationIndex), else through an index in memory that Open
// builds from the leaves and the pipeline extends (finish) as batches become durable.
//
// Whatever answers, a found identity is confirmed against the leaf of the entry it points to:
// the leaf is what the tree and the checkpoints cover, an index is not.
type index struct {
	st    store.Store
	ids   store.IdentityIndex     // nil: mem
	all   store.IdentityBatch     // nil: one Lookup per identity
	convs store.ConversationIndex // nil: mem

	mu  sync.RWMutex
	mem *memIndex
}

// memIndex is the in-memory index: about 40 bytes per entry with an identity, and one head per
// conversation.
type memIndex struct {
	ids   map[uint64]uint64    // first 8 bytes of an identity digest -> entry
	more  map[seal.Hash]uint64 // identities whose first 8 bytes were taken
	convs map[seal.Hash]uint64 // conversation digest -> latest entry
}

func openIndex(ctx context.Context, st store.Store, size uint64) (*index, error) {
	x := &index{st: st}
	x.ids, _ = st.(store.IdentityIndex)
	if x.ids != nil {
		x.all, _ = st.(store.IdentityBatch)
	}
	x.convs, _ = st.(store.ConversationIndex)
	if x.ids != nil && x.convs != nil {
		return x, nil
	}
	x.mem = &memIndex{ids: map[uint64]uint64{}, more: map[seal.Hash]uint64{}, convs: map[seal.Hash]uint64{}}
	for e, err := range st.Entries(ctx, 0, size) {
		if err != nil {
			return nil, fmt.Errorf("ledger: building the index from the store: %w", err)
		}
		leaf, err := seal.ParseLeaf(e.Leaf)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: %w", store.ErrCorrupt, e.Index, err)
		}
		x.mem.add(e.Index, leaf.Identity, leaf.Conversation)
	}
	return x, nil
}

func prefix(h seal.Hash) uint64 { return binary.LittleEndian.Uint64(h[:8]) }

func (m *memIndex) add(i uint64, id, conv seal.Hash) {
	if id != (seal.Hash{}) {
		if _, taken := m.ids[prefix(id)]; taken {
			m.more[id] = i
		} else {
			m.ids[prefix(id)] = i
		}
	}
	if conv != (seal.Hash{}) {
		m.convs[conv] = i
	}
}

// added records durable entries in the in-memory index, if there is one. The pipeline's finish calls
// it before it publishes the new size.
func (x *index) added(entries []store.Entry) {
	if x.mem == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for k := range entries {
		x.mem.add(entries[k].Index, entries[k].Identity, entries[k].Conversation)
	}
}

// lookup returns the durable entry whose leaf has identity id.
func (x *index) lookup(ctx context.Context, id seal.Hash) (uint64, bool, error) {
	if id == (seal.Hash{}) {
		return 0, false, nil
	}
	var i uint64
	var ok, trusted bool
	if x.ids != nil {
		var err error
		if i, ok, err = x.ids.Lookup(ctx, id); err != nil {
			return 0, false, fmt.Errorf("ledger: identity lookup: %w", err)
		}
	} else {
		x.mu.RLock()
		if i, ok = x.mem.more[id]; !ok {
			i, ok = x.mem.ids[prefix(id)]
		} else {
			trusted = true // the full digest matched
		}
		x.mu.RUnlock()
	}
	if !ok {
		return 0, false, nil
	}
	if err := x.confirm(ctx, id, i); err != nil {
		if x.ids == nil && !trusted && errors.Is(err, errOtherIdentity) {
			return 0, false, nil // another identity with the same first 8 bytes
		}
		return 0, false, err
	}
	return i, true, nil
}

// batches reports whether the store looks many identities up in one call (store.IdentityBatch).
func (x *index) batches() bool { return x.all != nil }

// lookupAll looks up each of ids, as lookup does, in one call to the store if it can take many:
// found[k] is the durable entry of ids[k], or -1.
func (x *index) lookupAll(ctx context.Context, ids []seal.Hash) ([]int64, error) {
	found := make([]int64, len(ids))
	if x.all == nil {
		for k, id := range ids {
			i, ok, err := x.lookup(ctx, id)
			if err != nil {
				return nil, err
			}
			found[k] = -1
			if ok {
				found[k] = int64(i)
			}
		}
		return found, nil
	}
	want := make([]store.Hash, len(ids))
	for k := range ids {
		want[k] = ids[k]
	}
	m, err := x.all.LookupAll(ctx, want)
	if err != nil {
		return nil, fmt.Errorf("ledger: identity lookup: %w", err)
	}
	for k, id := range ids {
		found[k] = -1
		i, ok := m[id]
		if !ok || id == (seal.Hash{}) {
			continue
		}
		if err := x.confirm(ctx, id, i); err != nil {
			return nil, err
		}
		found[k] = int64(i)
	}
	return found, nil
}

// confirm checks that the leaf of entry i, which the store's identity index found for id, has
// that identity.
func (x *index) confirm(ctx context.Context, id seal.Hash, i uint64) error {
	leaf, _, err := x.leaf(ctx, i)
	if err != nil {
		return err
	}
	if leaf.Identity != id {
		return fmt.Errorf("%w: the store's identity index points at entry %d, whose leaf has another identity: the index was altered (%w)", store.ErrCorrupt, i, errOtherIdentity)
	}
	return nil
}

// errOtherIdentity is wrapped by confirm's error for a leaf with another identity.
var errOtherIdentity = errors.New("another identity")

// lastInConversation returns the latest durable entry of a conversation.
func (x *index) lastInConversation(ctx context.Context, conv seal.Hash) (uint64, bool, error) {
	if x.convs != nil {
		i, ok, err := x.convs.LastInConversation(ctx, conv)
		if err != nil {
			return 0, false, fmt.Errorf("ledger: conversation lookup: %w", err)
		}
		return i, ok, nil
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	i, ok := x.mem.convs[conv]
	return i, ok, nil
}

// leaf reads entry i and returns its parsed leaf and leaf hash.
func (x *index) leaf(ctx context.Context, i uint64) (seal.Leaf, seal.Hash, error) {
	e, err := store.ReadEntry(ctx, x.st, i)
	if err != nil {
		return seal.Leaf{}, seal.Hash{}, fmt.Errorf("ledger: reading entry %d: %w", i, err)
	}
	leaf, err := seal.ParseLeaf(e.Leaf)
	if err != nil {
		return seal.Leaf{}, seal.Hash{}, fmt.Errorf("%w: entry %d: %w", store.ErrCorrupt, i, err)
	}
	if leaf.Index != i {
		return seal.Leaf{}, seal.Hash{}, fmt.Errorf("%w: entry %d holds the leaf of entry %d", store.ErrCorrupt, i, leaf.Index)
	}
	return leaf, seal.LeafHash(e.Leaf), nil
}
