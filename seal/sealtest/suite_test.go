package sealtest_test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"testing"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
)

func TestKeyringConformance(t *testing.T) {
	sealtest.RunKeyring(t, func(t *testing.T) seal.Keyring { return sealtest.NewKeyring() })
}

// Broken keyrings, each breaking one rule.
type (
	// unbound ignores the key id: a wrapped key can be passed off as another's.
	unbound struct{ *sealtest.Keyring }
	// anySize wraps data keys of any size (it pads or cuts them).
	anySize struct{ *sealtest.Keyring }
	// keepsRetired stops listing a retired KEK but still unwraps with it.
	keepsRetired struct {
		*sealtest.Keyring
		retired map[string]bool
	}
	// retiresCurrent lets the current KEK be retired (by rotating first, silently).
	retiresCurrent struct{ *sealtest.Keyring }
)

func (k unbound) Wrap(ctx context.Context, _ string, dek []byte) (string, []byte, error) {
	return k.Keyring.Wrap(ctx, "", dek)
}

func (k unbound) Unwrap(ctx context.Context, kek, _ string, w []byte) ([]byte, error) {
	return k.Keyring.Unwrap(ctx, kek, "", w)
}

func (k anySize) Wrap(ctx context.Context, id string, dek []byte) (string, []byte, error) {
	fixed := make([]byte, seal.DataKeySize)
	copy(fixed, dek)
	return k.Keyring.Wrap(ctx, id, fixed)
}

func (k *keepsRetired) Retire(ctx context.Context, kek string) error {
	if kek == k.ID() {
		return seal.ErrRetireCurrent
	}
	k.retired[kek] = true
	return nil
}

func (k *keepsRetired) KEKs(ctx context.Context) ([]string, error) {
	all, err := k.Keyring.KEKs(ctx)
	return slices.DeleteFunc(all, func(s string) bool { return k.retired[s] }), err
}

func (k retiresCurrent) Retire(ctx context.Context, kek string) error {
	if kek == k.ID() {
		if _, err := k.Rotate(ctx); err != nil {
			return err
		}
	}
	return k.Keyring.Retire(ctx, kek)
}

var brokenKeyrings = map[string]func() seal.Keyring{
	"unbound":         func() seal.Keyring { return unbound{sealtest.NewKeyring()} },
	"any-size":        func() seal.Keyring { return anySize{sealtest.NewKeyring()} },
	"keeps-retired":   func() seal.Keyring { return &keepsRetired{sealtest.NewKeyring(), map[string]bool{}} },
	"retires-current": func() seal.Keyring { return retiresCurrent{sealtest.NewKeyring()} },
}

// TestBrokenKeyring runs the suite on the broken keyring named by SEALTEST_BROKEN; it is run
// as a subprocess by TestSuiteNamesTheBrokenRuleOnce.
func TestBrokenKeyring(t *testing.T) {
	open, ok := brokenKeyrings[os.Getenv("SEALTEST_BROKEN")]
	if !ok {
		t.Skip("run by TestSuiteNamesTheBrokenRuleOnce")
	}
	sealtest.RunKeyring(t, func(t *testing.T) seal.Keyring { return open() })
}

func TestSuiteNamesTheBrokenRuleOnce(t *testing.T) {
	failLine := regexp.MustCompile(`--- FAIL: TestBrokenKeyring/(\S+)`)
	skipLine := regexp.MustCompile(`--- SKIP: TestBrokenKeyring/(\S+)`)
	for name, want := range map[string]struct {
		fails   string
		skipped []string
	}{
		"unbound":         {"Keyring/key-id-bound", nil},
		"any-size":        {"Keyring/dek-size", nil},
		"keeps-retired":   {"KEKRetirer/retire", []string{"KEKRetirer/retire-twice", "KEKRetirer/concurrent"}},
		"retires-current": {"KEKRetirer/retire-current", nil},
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenKeyring$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), "SEALTEST_BROKEN="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a keyring that breaks %s:\n%s", want.fails, out)
			}
			var fails, skips []string
			for _, m := range failLine.FindAllStringSubmatch(string(out), -1) {
				fails = append(fails, m[1])
			}
			for _, m := range skipLine.FindAllStringSubmatch(string(out), -1) {
				skips = append(skips, m[1])
			}
			if len(fails) != 1 || fails[0] != want.fails {
				t.Fatalf("failed rules %v; want exactly [%s]:\n%s", fails, want.fails, out)
			}
			if !regexp.MustCompile(`rule ` + regexp.QuoteMeta(want.fails) + ` broken: `).Match(out) {
				t.Errorf("the failure message does not name the rule:\n%s", out)
			}
			for _, r := range want.skipped {
				if !slices.Contains(skips, r) {
					t.Errorf("rule %s, which relies on %s, was not skipped (skipped: %v)", r, want.fails, skips)
				}
			}
		})
	}
}
