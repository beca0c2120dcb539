package sealtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/commseal/commseal/seal"
)

// RunKeyring runs the conformance suite for seal.Keyring adapters as subtests of t, one per
// rule, named "Interface/rule". open must return a keyring each time it is called: for a
// seal.KEKRetirer a fresh one (the rules rotate and retire KEKs), released when t ends
// (t.Cleanup). A rule stops at its first violation with a message "rule NAME broken: ..."; a
// rule whose premise failed is skipped, naming the rule it relies on, so that one defect gives
// one failure. The KEKRetirer rules run when the keyring implements it and are skipped
// otherwise.
//
//	Keyring/round-trip         Unwrap(kek, id, Wrap(id, dek)) is dek, for the kek Wrap named,
//	                           which is ID(); wrapped bytes do not hold the dek; neither call
//	                           keeps or changes the caller's slices
//	Keyring/key-id-bound       unwrapping under another key id fails with ErrDecrypt
//	Keyring/unknown-kek        unwrapping under a KEK the keyring does not hold fails with
//	                           ErrUnknownKEK
//	Keyring/altered            a flipped byte, a truncation, empty or nil bytes: ErrDecrypt
//	Keyring/dek-size           a data key of any size but DataKeySize is refused with ErrBadDataKey
//	Keyring/concurrent         concurrent wraps and unwraps all round-trip (run with -race)
//	KEKRetirer/rotate          Rotate makes a new current KEK (ID, what Wrap names, KEKs);
//	                           the old one still unwraps what it wrapped, and only that
//	KEKRetirer/retire          after Retire, nothing wrapped under that KEK unwraps, from a
//	                           copy kept aside, under any name; KEKs no longer lists it; the
//	                           other KEKs work as before
//	KEKRetirer/retire-current  retiring the current KEK fails with ErrRetireCurrent and
//	                           changes nothing
//	KEKRetirer/retire-twice    retiring a retired KEK again is harmless
//	KEKRetirer/concurrent      wraps and unwraps during rotations and retirements either
//	                           round-trip or fail with ErrUnknownKEK (their KEK was retired);
//	                           none returns a wrong key
func RunKeyring(t *testing.T, open func(t *testing.T) seal.Keyring) {
	t.Helper()
	failed := map[string]bool{}
	for _, r := range keyringRules {
		unmet := false
		ok := t.Run(r.name, func(t *testing.T) {
			for _, n := range r.needs {
				if failed[n] {
					unmet = true
					t.Skipf("skipped: it relies on rule %s, which failed or could not be checked", n)
				}
			}
			ring := open(t)
			c := &check{t: t, rule: r.name, ring: ring, ctx: context.Background()}
			if r.retirer {
				rr, ok := ring.(seal.KEKRetirer)
				if !ok {
					t.Skipf("skipped: the keyring is no seal.KEKRetirer")
				}
				c.ret = rr
			}
			r.fn(c)
		})
		if !ok || unmet {
			failed[r.name] = true
		}
	}
}

type keyringRule struct {
	name    string
	needs   []string
	retirer bool
	fn      func(*check)
}

var keyringRules = []keyringRule{
	{name: "Keyring/round-trip", fn: roundTrip},
	{name: "Keyring/key-id-bound", needs: []string{"Keyring/round-trip"}, fn: keyIDBound},
	{name: "Keyring/unknown-kek", needs: []string{"Keyring/round-trip"}, fn: unknownKEK},
	{name: "Keyring/altered", needs: []string{"Keyring/round-trip"}, fn: altered},
	{name: "Keyring/dek-size", fn: dekSize},
	{name: "Keyring/concurrent", needs: []string{"Keyring/round-trip"}, fn: concurrent},
	{name: "KEKRetirer/rotate", needs: []string{"Keyring/round-trip"}, retirer: true, fn: rotate},
	{name: "KEKRetirer/retire", needs: []string{"KEKRetirer/rotate"}, retirer: true, fn: retire},
	{name: "KEKRetirer/retire-current", needs: []string{"KEKRetirer/rotate"}, retirer: true, fn: retireCurrent},
	{name: "KEKRetirer/retire-twice", needs: []string{"KEKRetirer/retire"}, retirer: true, fn: retireTwice},
	{name: "KEKRetirer/concurrent", needs: []string{"KEKRetirer/retire"}, retirer: true, fn: retirerConcurrent},
}

// check is what a rule gets: the keyring and a way to fail that names the rule.
type check struct {
	t    *testing.T
	rule string
	ctx  context.Context
	ring seal.Keyring
	ret  seal.KEKRetirer // nil unless the rule is a KEKRetirer rule
}

func (c *check) fail(format string, args ...any) {
	c.t.Helper()
	c.t.Fatalf("rule %s broken: %s", c.rule, fmt.Sprintf(format, args...))
}

// DEKAt returns the deterministic data key the suite wraps for n.
func DEKAt(n int) []byte {
	dek := make([]byte, seal.DataKeySize)
	for k := range dek {
		dek[k] = byte(n*131+k*7) ^ 0x5c
	}
	return dek
}

// wrap wraps dek for id and checks the KEK Wrap names is the current one.
func (c *check) wrap(id string, dek []byte) (string, []byte) {
	c.t.Helper()
	want := c.ring.ID()
	kek, w, err := c.ring.Wrap(c.ctx, id, dek)
	if err != nil {
		c.fail("Wrap(%q): %v", id, err)
	}
	if kek != want {
		c.fail("Wrap(%q) names KEK %q; the current KEK (ID) is %q", id, kek, want)
	}
	if len(w) == 0 {
		c.fail("Wrap(%q) returned no wrapped bytes", id)
	}
	return kek, w
}

// unwrapOK unwraps and checks the result is want.
func (c *check) unwrapOK(kek, id string, w, want []byte) {
	c.t.Helper()
	got, err := c.ring.Unwrap(c.ctx, kek, id, w)
	if err != nil {
		c.fail("Unwrap(%q, %q): %v", kek, id, err)
	}
	if !bytes.Equal(got, want) {
		c.fail("Unwrap(%q, %q) returned another key than was wrapped", kek, id)
	}
}

// unwrapFails checks that Unwrap fails with an error wrapping want (any error if want is nil)
// and returns no key.
func (c *check) unwrapFails(what, kek, id string, w []byte, want error) {
	c.t.Helper()
	got, err := c.ring.Unwrap(c.ctx, kek, id, w)
	switch {
	case err == nil:
		c.fail("%s: Unwrap(%q, %q) succeeded; want an error", what, kek, id)
	case want != nil && !errors.Is(err, want):
		c.fail("%s: Unwrap(%q, %q): err = %v; want an error wrapping %v", what, kek, id, err, want)
	case got != nil:
		c.fail("%s: Unwrap(%q, %q) failed but returned %d bytes", what, kek, id, len(got))
	}
}

func roundTrip(c *check) {
	zeros, ones := make([]byte, seal.DataKeySize), bytes.Repeat([]byte{0xff}, seal.DataKeySize)
	for n, dek := range [][]byte{DEKAt(1), zeros, ones} {
		id := fmt.Sprintf("dk1.2026-0%d.suite", n+1)
		in := slices.Clone(dek)
		kek, w := c.wrap(id, in)
		clear(in) // the caller reuses its buffer
		if bytes.Contains(w, dek) {
			c.fail("the wrapped bytes of %q hold the data key in plain", id)
		}
		kept := slices.Clone(w)
		got, err := c.ring.Unwrap(c.ctx, kek, id, w)
		if err != nil {
			c.fail("Unwrap(%q, %q) of what Wrap returned: %v", kek, id, err)
		}
		if !bytes.Equal(got, dek) {
			c.fail("Unwrap(%q, %q) returned another key than was wrapped", kek, id)
		}
		if !bytes.Equal(w, kept) {
			c.fail("Unwrap(%q, %q) changed the caller's wrapped bytes", kek, id)
		}
		clear(got) // the caller wipes its copy
		c.unwrapOK(kek, id, w, dek)
	}
}

func keyIDBound(c *check) {
	kek, w := c.wrap("dk1.2026-07.a", DEKAt(2))
	for _, other := range []string{"dk1.2026-07.b", "dk1.2026-07.", "", "dk1.2026-07.a\x00"} {
		c.unwrapFails(fmt.Sprintf("wrapped for %q, unwrapped as %q", "dk1.2026-07.a", other), kek, other, w, seal.ErrDecrypt)
	}
}

func unknownKEK(c *check) {
	kek, w := c.wrap("dk1.k", DEKAt(3))
	for _, other := range []string{kek + "-no-such-kek", "", "no-such-kek"} {
		c.unwrapFails("a KEK the keyring does not hold", other, "dk1.k", w, seal.ErrUnknownKEK)
	}
}

func altered(c *check) {
	kek, w := c.wrap("dk1.alter", DEKAt(4))
	for _, pos := range []int{0, len(w) / 2, len(w) - 1} {
		bad := slices.Clone(w)
		bad[pos] ^= 0x01
		c.unwrapFails(fmt.Sprintf("byte %d of %d flipped", pos, len(w)), kek, "dk1.alter", bad, seal.ErrDecrypt)
	}
	c.unwrapFails("the last byte cut", kek, "dk1.alter", w[:len(w)-1], seal.ErrDecrypt)
	c.unwrapFails("empty wrapped bytes", kek, "dk1.alter", []byte{}, seal.ErrDecrypt)
	c.unwrapFails("nil wrapped bytes", kek, "dk1.alter", nil, seal.ErrDecrypt)
	c.unwrapOK(kek, "dk1.alter", w, DEKAt(4))
}

func dekSize(c *check) {
	for _, n := range []int{0, 16, seal.DataKeySize - 1, seal.DataKeySize + 1, 64} {
		var dek []byte
		if n > 0 {
			dek = make([]byte, n)
		}
		kek, w, err := c.ring.Wrap(c.ctx, "dk1.size", dek)
		if !errors.Is(err, seal.ErrBadDataKey) {
			c.fail("Wrap of a %d-byte data key: err = %v; want ErrBadDataKey", n, err)
		}
		if kek != "" || w != nil {
			c.fail("Wrap of a %d-byte data key failed but returned KEK %q and %d bytes", n, kek, len(w))
		}
	}
}

func concurrent(c *check) {
	var wg sync.WaitGroup
	errc := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for n := range 25 {
				id, dek := fmt.Sprintf("dk1.g%d.%d", g, n), DEKAt(g*100+n)
				kek, w, err := c.ring.Wrap(c.ctx, id, dek)
				if err != nil {
					errc <- fmt.Sprintf("Wrap(%q): %v", id, err)
					return
				}
				got, err := c.ring.Unwrap(c.ctx, kek, id, w)
				if err != nil || !bytes.Equal(got, dek) {
					errc <- fmt.Sprintf("Unwrap(%q, %q) during concurrent use: %v (right key: %v)", kek, id, err, bytes.Equal(got, dek))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for msg := range errc {
		c.fail("%s", msg)
	}
}

// keks returns KEKs, sorted.
func (c *check) keks() []string {
	c.t.Helper()
	ks, err := c.ret.KEKs(c.ctx)
	if err != nil {
		c.fail("KEKs: %v", err)
	}
	ks = slices.Clone(ks)
	slices.Sort(ks)
	return ks
}

func (c *check) wantKEKs(what string, want ...string) {
	c.t.Helper()
	want = slices.Clone(want)
	slices.Sort(want)
	if got := c.keks(); !slices.Equal(got, want) {
		c.fail("%s: KEKs = %q; want %q", what, got, want)
	}
}

func (c *check) rotateNow() string {
	c.t.Helper()
	before := c.ring.ID()
	kek, err := c.ret.Rotate(c.ctx)
	if err != nil {
		c.fail("Rotate: %v", err)
	}
	if kek == "" || kek == before {
		c.fail("Rotate returned %q; want a new KEK (the current one was %q)", kek, before)
	}
	if id := c.ring.ID(); id != kek {
		c.fail("after Rotate returned %q, ID() is %q", kek, id)
	}
	return kek
}

func rotate(c *check) {
	k0 := c.ring.ID()
	c.wantKEKs("a new keyring", k0)
	_, w0 := c.wrap("dk1.old", DEKAt(10))
	k1 := c.rotateNow()
	c.wantKEKs("after one rotation", k0, k1)
	kek, w1 := c.wrap("dk1.new", DEKAt(11)) // c.wrap checks Wrap names the new current KEK
	if kek != k1 {
		c.fail("after Rotate, Wrap names %q; want %q", kek, k1)
	}
	c.unwrapOK(k0, "dk1.old", w0, DEKAt(10))
	c.unwrapOK(k1, "dk1.new", w1, DEKAt(11))
	c.unwrapFails("wrapped under the old KEK, named as the new one", k1, "dk1.old", w0, seal.ErrDecrypt)
	c.unwrapFails("wrapped under the new KEK, named as the old one", k0, "dk1.new", w1, seal.ErrDecrypt)
	k2 := c.rotateNow()
	c.wantKEKs("after two rotations", k0, k1, k2)
}

func retire(c *check) {
	k0 := c.ring.ID()
	_, w0 := c.wrap("dk1.doomed", DEKAt(20))
	copyOfW0 := slices.Clone(w0) // a backup, a snapshot, a block the file system kept
	k1 := c.rotateNow()
	_, w1 := c.wrap("dk1.survivor", DEKAt(21))
	if err := c.ret.Retire(c.ctx, k0); err != nil {
		c.fail("Retire(%q) of an old KEK: %v", k0, err)
	}
	c.wantKEKs("after retiring the old KEK", k1)
	for _, name := range []string{k0, k1} {
		c.unwrapFails("wrapped under a retired KEK", name, "dk1.doomed", w0, nil)
		c.unwrapFails("a copy of bytes wrapped under a retired KEK", name, "dk1.doomed", copyOfW0, nil)
	}
	c.unwrapOK(k1, "dk1.survivor", w1, DEKAt(21))
	kek, w := c.wrap("dk1.after", DEKAt(22))
	c.unwrapOK(kek, "dk1.after", w, DEKAt(22))
}

func retireCurrent(c *check) {
	k0 := c.ring.ID()
	k1 := c.rotateNow()
	_, w := c.wrap("dk1.current", DEKAt(30))
	if err := c.ret.Retire(c.ctx, k1); !errors.Is(err, seal.ErrRetireCurrent) {
		c.fail("Retire of the current KEK: err = %v; want ErrRetireCurrent", err)
	}
	if id := c.ring.ID(); id != k1 {
		c.fail("a refused Retire changed the current KEK from %q to %q", k1, id)
	}
	c.wantKEKs("after a refused Retire", k0, k1)
	c.unwrapOK(k1, "dk1.current", w, DEKAt(30))
}

func retireTwice(c *check) {
	k0 := c.ring.ID()
	k1 := c.rotateNow()
	for n := range 2 {
		if err := c.ret.Retire(c.ctx, k0); err != nil {
			c.fail("Retire(%q), call %d: %v; retiring a retired KEK must be harmless", k0, n+1, err)
		}
	}
	c.wantKEKs("after retiring a KEK twice", k1)
}

func retirerConcurrent(c *check) {
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errc := make(chan string, 9)
	for g := range 8 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				id, dek := fmt.Sprintf("dk1.r%d.%d", g, n), DEKAt(g*1000+n)
				kek, w, err := c.ring.Wrap(c.ctx, id, dek)
				if err != nil {
					errc <- fmt.Sprintf("Wrap(%q) during rotations: %v", id, err)
					return
				}
				got, err := c.ring.Unwrap(c.ctx, kek, id, w)
				switch {
				case errors.Is(err, seal.ErrUnknownKEK):
					// its KEK was retired in between: allowed
				case err != nil:
					errc <- fmt.Sprintf("Unwrap(%q, %q) during rotations: %v; want the key or ErrUnknownKEK", kek, id, err)
					return
				case !bytes.Equal(got, dek):
					errc <- fmt.Sprintf("Unwrap(%q, %q) during rotations returned another key", kek, id)
					return
				}
			}
		})
	}
	var live []string
	for range 6 {
		k, err := c.ret.Rotate(c.ctx)
		if err != nil {
			errc <- fmt.Sprintf("Rotate during use: %v", err)
			break
		}
		live = append(live, k)
		if len(live) > 2 {
			if err := c.ret.Retire(c.ctx, live[0]); err != nil {
				errc <- fmt.Sprintf("Retire(%q) during use: %v", live[0], err)
				break
			}
			live = live[1:]
		}
	}
	close(stop)
	wg.Wait()
	close(errc)
	for msg := range errc {
		c.fail("%s", msg)
	}
	kek, w := c.wrap("dk1.settled", DEKAt(99))
	c.unwrapOK(kek, "dk1.settled", w, DEKAt(99))
}
