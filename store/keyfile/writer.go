package keyfile

import (
	"fmt"
	"slices"

	"github.com/commseal/commseal/internal/durable"
	"github.com/commseal/commseal/store"
)

// run is the writer goroutine: it takes every operation waiting, decides each against the
// current state, appends their records in one write, syncs once, erases what they supersede
// (one more sync), and only then publishes the new state and answers. Callers that arrive
// while it syncs wait on reqs and form the next batch: that is the group commit.
func (v *Vault) run() {
	defer close(v.done)
	for {
		var batch []*op
		select {
		case o := <-v.reqs:
			batch = append(batch, o)
		case <-v.quit:
			return
		}
	gather:
		for len(batch) < maxBatch {
			select {
			case o := <-v.reqs:
				batch = append(batch, o)
			default:
				break gather
			}
		}
		v.process(batch)
	}
}

// process claims the ops of a batch (a withdrawn op is dropped, one whose context is done is
// failed unchanged) and commits them, a Compact on its own between the ops before and after.
func (v *Vault) process(batch []*op) {
	var ops []*op
	for _, o := range batch {
		if !o.state.CompareAndSwap(opQueued, opClaimed) {
			continue // withdrawn: its caller has returned
		}
		if err := o.ctx.Err(); err != nil {
			o.res <- err
			continue
		}
		if o.kind == opCompact {
			v.commit(ops)
			ops = nil
			o.res <- v.compact()
			continue
		}
		ops = append(ops, o)
	}
	v.commit(ops)
}

// commit decides, writes and publishes a batch of operations (not Compact).
func (v *Vault) commit(ops []*op) {
	if len(ops) == 0 {
		return
	}
	if v.failed != nil {
		for _, o := range ops {
			o.res <- v.errFailed()
		}
		return
	}
	base := v.size.Load()
	var enc encoder
	overlay := map[string]*entry{} // the state as the batch leaves it
	get := func(id string) *entry {
		if e, ok := overlay[id]; ok {
			return e
		}
		return v.keys[id]
	}
	errs := make([]error, len(ops))
	erasing := make([]bool, len(ops))
	var erase []region
	records := 0
	for i, o := range ops {
		id := o.k.ID
		cur := get(id)
		switch o.kind {
		case opPut:
			if cur != nil {
				errs[i] = fmt.Errorf("%w: key %q", store.ErrDuplicate, id)
				continue
			}
			r := enc.put(id, o.k.KEK, o.k.Meta, o.k.Wrapped)
			records++
			overlay[id] = &entry{kek: o.k.KEK, wrapped: o.k.Wrapped, meta: o.k.Meta,
				regions: []region{{off: base + int64(r), n: regionSize(o.k.Wrapped)}}}
		case opImport: // a tombstone
			if cur != nil {
				errs[i] = fmt.Errorf("%w: key %q", store.ErrDuplicate, id)
				continue
			}
			enc.destroy(id, o.k.KEK, o.k.Meta)
			records++
			overlay[id] = &entry{kek: o.k.KEK, meta: o.k.Meta, destroyed: true}
		case opSetMeta:
			if errs[i] = liveErr(id, cur); errs[i] != nil {
				continue
			}
			enc.setMeta(id, o.k.Meta)
			records++
			n := *cur
			n.meta, n.regions = o.k.Meta, slices.Clone(cur.regions)
			overlay[id] = &n
		case opRewrap:
			if errs[i] = liveErr(id, cur); errs[i] != nil {
				continue
			}
			r := enc.rewrap(id, o.k.KEK, o.k.Wrapped)
			records++
			erase, erasing[i] = append(erase, cur.regions...), true
			n := *cur
			n.kek, n.wrapped = o.k.KEK, o.k.Wrapped
			n.regions = []region{{off: base + int64(r), n: regionSize(o.k.Wrapped)}}
			overlay[id] = &n
		case opDestroy:
			switch {
			case cur == nil:
				errs[i] = fmt.Errorf("%w: key %q", store.ErrNotFound, id)
				continue
			case cur.destroyed && len(cur.regions) == 0:
				continue // destroyed before, nothing left to erase: harmless
			case !cur.destroyed:
				enc.destroy(id, cur.kek, cur.meta)
				records++
			}
			erase, erasing[i] = append(erase, cur.regions...), true
			overlay[id] = &entry{kek: cur.kek, meta: cur.meta, destroyed: true}
		}
	}
	if records > 0 {
		enc.commit(uint64(base), uint32(records))
		err := v.writeAt(enc.buf, base)
		if err == nil {
			err = durable.Sync(v.f)
		}
		if err != nil {
			v.failed = fmt.Errorf("appending at offset %d: %w", base, err)
			for i, o := range ops {
				if errs[i] == nil {
					errs[i] = v.errFailed()
				}
				o.res <- errs[i]
			}
			return
		}
		v.size.Store(base + int64(len(enc.buf)))
		clear(enc.buf)
	}
	if len(erase) > 0 {
		if err := v.erase(erase); err != nil {
			// The records are durable, so the state below is the vault's; what is not yet
			// erased, the next Open erases.
			v.failed = err
			for i := range ops {
				if erasing[i] && errs[i] == nil {
					errs[i] = fmt.Errorf("keyfile: key %q: recorded, but overwriting its earlier wrapped bytes failed (the next Open overwrites them): %w", ops[i].k.ID, err)
				}
			}
		}
	}
	v.publish(overlay)
	for i, o := range ops {
		o.res <- errs[i]
	}
}

func liveErr(id string, e *entry) error {
	switch {
	case e == nil:
		return fmt.Errorf("%w: key %q", store.ErrNotFound, id)
	case e.destroyed:
		return fmt.Errorf("%w: key %q", store.ErrDestroyed, id)
	}
	return nil
}

// publish makes a batch's state the vault's, and clears the wrapped bytes it superseded.
func (v *Vault) publish(overlay map[string]*entry) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for id, e := range overlay {
		if old := v.keys[id]; old != nil && len(old.wrapped) > 0 && (len(e.wrapped) == 0 || &e.wrapped[0] != &old.wrapped[0]) {
			clear(old.wrapped)
		}
		v.keys[id] = e
	}
}

// writeAt writes b at off, through the test hook.
func (v *Vault) writeAt(b []byte, off int64) error {
	if v.written != nil {
		if err := v.written(b); err != nil {
			return err
		}
	}
	_, err := v.f.WriteAt(b, off)
	return err
}

// erase overwrites each region with zeros in place, then syncs.
func (v *Vault) erase(regions []region) error {
	for _, r := range regions {
		if err := v.writeAt(make([]byte, r.n), r.off); err != nil {
			return fmt.Errorf("keyfile: erasing %d bytes at offset %d: %w", r.n, r.off, err)
		}
	}
	if err := durable.Sync(v.f); err != nil {
		return fmt.Errorf("keyfile: syncing erasures: %w", err)
	}
	return nil
}
