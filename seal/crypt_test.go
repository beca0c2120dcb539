package seal_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
)

func TestKEKKeyringConformance(t *testing.T) {
	sealtest.RunKeyring(t, func(t *testing.T) seal.Keyring {
		kek := make([]byte, 32)
		rand.Read(kek)
		r, err := seal.NewKEKKeyring("file-1", kek)
		if err != nil {
			t.Fatal(err)
		}
		return r
	})
}

func TestNewKEKKeyringRefusesBadKEKs(t *testing.T) {
	for _, c := range []struct {
		name string
		kek  []byte
	}{{"", make([]byte, 32)}, {"k", nil}, {"k", make([]byte, 31)}, {"k", make([]byte, 33)}} {
		if _, err := seal.NewKEKKeyring(c.name, c.kek); !errors.Is(err, seal.ErrBadKEK) {
			t.Errorf("NewKEKKeyring(%q, %d bytes): err = %v; want ErrBadKEK", c.name, len(c.kek), err)
		}
	}
}

// Two keyrings with the same KEK name but different KEKs do not open each other's keys.
func TestKEKKeyringWrongKEKWithTheSameName(t *testing.T) {
	ctx := context.Background()
	a, _ := seal.NewKEKKeyring("kek", bytes.Repeat([]byte{1}, 32))
	b, _ := seal.NewKEKKeyring("kek", bytes.Repeat([]byte{2}, 32))
	kek, w, err := a.Wrap(ctx, "dk", sealtest.DEKAt(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Unwrap(ctx, kek, "dk", w); !errors.Is(err, seal.ErrDecrypt) {
		t.Fatalf("unwrap with another KEK of the same name: err = %v; want ErrDecrypt", err)
	}
}

func ExampleKEKKeyring() {
	ctx := context.Background()
	ring, _ := seal.NewKEKKeyring("file-1", bytes.Repeat([]byte{7}, 32))
	dek, _ := seal.NewDataKey()
	kek, wrapped, _ := ring.Wrap(ctx, "dk1.2026-07.x", dek)
	back, _ := ring.Unwrap(ctx, kek, "dk1.2026-07.x", wrapped)
	_, err := ring.Unwrap(ctx, kek, "dk1.2026-08.y", wrapped) // bound to its key id
	fmt.Println(kek, bytes.Equal(back, dek), errors.Is(err, seal.ErrDecrypt))
	// Output: file-1 true true
}
