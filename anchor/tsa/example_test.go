package tsa_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/commseal/commseal/anchor/tsa"
	"github.com/commseal/commseal/anchor/tsa/tsatest"
)

// A ledger stamps each new checkpoint with its TSAs, stores the tokens as anchor entries, and a
// verifier later checks each token with only the token, the stored checkpoint and the roots.
func Example() {
	local, err := tsatest.NewServer() // in production: the TSAs' URLs and their roots
	if err != nil {
		panic(err)
	}
	defer local.Close()

	client, err := tsa.NewClient(local.Roots(), []tsa.TSA{{Name: "local", URL: local.URL}}, tsa.Options{Timeout: 10 * time.Second})
	if err != nil {
		panic(err)
	}
	checkpoint := []byte("example.com/ledger\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— example.com/ledger AAAA\n")
	var stored [][]byte
	for _, r := range client.StampAll(context.Background(), checkpoint) {
		if errors.Is(r.Err, tsa.ErrUnavailable) {
			continue // this TSA stamps the next checkpoint instead
		}
		if r.Err != nil {
			panic(r.Err)
		}
		stored = append(stored, r.Token.DER) // the anchor entry's payload
	}

	// Later, anywhere:
	for _, der := range stored {
		tok, err := tsa.Verify(der, checkpoint, local.Roots())
		fmt.Println(tok.TSA, err, time.Since(tok.Time) < time.Minute)
	}
	_, err = tsa.Verify(stored[0], []byte("another checkpoint\n"), local.Roots())
	fmt.Println(errors.Is(err, tsa.ErrImprint))
	// Output:
	// CN=commseal tsatest TSA,O=commseal tests <nil> true
	// true
}

// CheckOrder flags a token that claims a time before that of a checkpoint anchored earlier.
func ExampleCheckOrder() {
	t0 := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	anchors := []tsa.Anchor{
		{Size: 100, Time: t0, TSA: "a"},
		{Size: 250, Time: t0.Add(10 * time.Second), TSA: "a"},
		{Size: 400, Time: t0.Add(-time.Hour), TSA: "b"}, // b's clock, or b's key, is not to be trusted
		{Size: 520, Time: t0.Add(30 * time.Second), TSA: "a"},
	}
	for _, f := range tsa.CheckOrder(anchors) {
		fmt.Println(f.Index, f.Anchor.TSA, f.Prev.Size)
	}
	// Output:
	// 2 b 250
}
