package sealtest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
)

// A KMS or HSM adapter proves itself with one call from its own tests:
//
//	func TestConformance(t *testing.T) {
//		sealtest.RunKeyring(t, func(t *testing.T) seal.Keyring { return newAdapter(t) })
//	}
//
// The in-memory Keyring rotates and retires KEKs like one, for tests of what uses a keyring.
func Example() {
	ctx := context.Background()
	ring := sealtest.NewKeyring()
	old, wrapped, _ := ring.Wrap(ctx, "dk1.2026-07.x", sealtest.DEKAt(1))
	current, _ := ring.Rotate(ctx)
	_, err := ring.Unwrap(ctx, old, "dk1.2026-07.x", wrapped)
	fmt.Println("old KEK unwraps until retired:", err == nil)
	fmt.Println("retire the current KEK:", errors.Is(ring.Retire(ctx, current), seal.ErrRetireCurrent))
	_ = ring.Retire(ctx, old)
	_, err = ring.Unwrap(ctx, old, "dk1.2026-07.x", wrapped)
	fmt.Println("after retirement:", errors.Is(err, seal.ErrUnknownKEK))
	keks, _ := ring.KEKs(ctx)
	fmt.Println(len(keks), keks[0] == current)
	// Output:
	// old KEK unwraps until retired: true
	// retire the current KEK: true
	// after retirement: true
	// 1 true
}
