package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/commseal/commseal/store"
)

// claim calls Claim on the store, which implements store.Owner.
func (c *check) claim(ctx context.Context, owner string) (string, error) {
	return c.s.(store.Owner).Claim(ctx, owner)
}

// wantOwner claims owner and fails the rule unless the store answers want.
func (c *check) wantOwner(owner, want string) {
	c.t.Helper()
	got, err := c.claim(context.Background(), owner)
	if err != nil || got != want {
		c.fail("Claim(%q) = %q, %v; want %q", owner, got, err, want)
	}
}

func ownerClaim(c *check) {
	ctx := context.Background()
	done, cancel := context.WithCancel(ctx)
	cancel()
	for _, bad := range []struct {
		what, owner string
		ctx         context.Context
		want        error
	}{
		{"an empty owner", "", ctx, store.ErrInvalid},
		{"an owner of MaxOwner+1 bytes", strings.Repeat("k", store.MaxOwner+1), ctx, store.ErrInvalid},
		{"a done context", "cancelled", done, context.Canceled},
	} {
		if got, err := c.claim(bad.ctx, bad.owner); !errors.Is(err, bad.want) {
			c.fail("Claim with %s = %q, %v; want %v", bad.what, got, err, bad.want)
		}
	}
	// None of the refused claims recorded anything: the first valid one is the owner.
	first := strings.Repeat("o", store.MaxOwner)
	c.wantOwner(first, first)
	c.wantOwner("second", first)
	c.wantOwner(first, first)
	c.appendN(3)
	c.wantOwner("after appends", first)
	if _, err := c.claim(ctx, ""); !errors.Is(err, store.ErrInvalid) {
		c.fail("Claim of an empty owner on a claimed store: err = %v; want ErrInvalid", err)
	}
	c.must("Close", c.s.Close())
	if got, err := c.claim(ctx, first); !errors.Is(err, store.ErrClosed) {
		c.fail("Claim after Close = %q, %v; want ErrClosed", got, err)
	}
}

func ownerConcurrent(c *check) {
	const n = 8
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for k := range n {
		wg.Go(func() { got[k], errs[k] = c.claim(context.Background(), fmt.Sprintf("claimant %d", k)) })
	}
	wg.Wait()
	for k := range n {
		if errs[k] != nil {
			c.fail("Claim by claimant %d of %d at once: %v", k, n, errs[k])
		}
		if got[k] != got[0] {
			c.fail("claims at once got different owners: %q and %q", got[0], got[k])
		}
	}
	if !strings.HasPrefix(got[0], "claimant ") {
		c.fail("claims at once recorded %q, which none of them claimed", got[0])
	}
	c.wantOwner("late", got[0])
}
