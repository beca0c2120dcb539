package seal_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"

	"github.com/commseal/commseal/seal"
)

// The checkpoint of the examples in C2SP tlog-cosignature and tlog-witness.
const specCheckpoint = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"

// TestCosignatureMessageSpecExample: the signed message is byte for byte the one the spec
// shows for its example checkpoint and time.
func TestCosignatureMessageSpecExample(t *testing.T) {
	m, err := seal.CosignatureMessage(specCheckpoint, 1679315147)
	if err != nil {
		t.Fatal(err)
	}
	want := "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
	if string(m) != want {
		t.Fatalf("message:\n%s\nwant:\n%s", m, want)
	}
	m, err = seal.CosignatureMessage(specCheckpoint+"ext one\n", 0)
	if err != nil || !strings.HasSuffix(string(m), "\next one\n") || !strings.Contains(string(m), "\ntime 0\n") {
		t.Fatalf("extension lines are signed too: %q, %v", m, err)
	}
	for _, bad := range []string{"", "origin\n01\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", "origin\n1\nnot-a-hash\n", "origin\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"} {
		if _, err := seal.CosignatureMessage(bad, 1); !errors.Is(err, seal.ErrMalformedCheckpoint) {
			t.Errorf("CosignatureMessage(%q) = %v, want ErrMalformedCheckpoint", bad, err)
		}
	}
	if _, err := seal.CosignatureMessage(specCheckpoint, 1<<63); !errors.Is(err, seal.ErrMalformedCosignature) {
		t.Errorf("timestamp 2^63: %v, want ErrMalformedCosignature", err)
	}
}

// TestParseCosignatureLineKnownAnswers parses cosignatures published by others: the spec's
// example (whose time is the one its example message shows) and transparency-dev/formats'
// timestamp vector.
func TestParseCosignatureLineKnownAnswers(t *testing.T) {
	for _, tc := range []struct {
		line string
		id   uint32
		time uint64
	}{
		{"— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==", 0x8d66cf3f, 1679315147},
		{"— w ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==\n", 0x646846b9, 1727964367},
	} {
		c, err := seal.ParseCosignatureLine(tc.line)
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		if c.KeyID != tc.id || c.Time != tc.time {
			t.Errorf("%q: key ID %08x time %d, want %08x %d", tc.line, c.KeyID, c.Time, tc.id, tc.time)
		}
		if got := c.Line(); got != strings.TrimSuffix(tc.line, "\n")+"\n" {
			t.Errorf("Line() = %q, want the line parsed", got)
		}
	}
}

func TestParseCosignatureLineRefusesMalformed(t *testing.T) {
	good := "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA=="
	maxTime := make([]byte, 4+8+64)
	maxTime[4] = 0x80
	for name, line := range map[string]string{
		"empty":               "",
		"no dash":             strings.TrimPrefix(good, "— "),
		"hyphen":              "- " + strings.TrimPrefix(good, "— "),
		"two lines":           good + "\n" + good,
		"newline inside":      strings.Replace(good, " jW", "\njW", 1),
		"name with plus":      strings.Replace(good, "w1", "w+1", 1),
		"no signature":        "— witness.example.com/w1",
		"bad base64":          "— w !!!!",
		"ed25519 note sig":    "— w " + base64.StdEncoding.EncodeToString(make([]byte, 4+64)),
		"ml-dsa size":         "— w " + base64.StdEncoding.EncodeToString(make([]byte, 4+8+2420)),
		"time above 2^63-1":   "— w " + base64.StdEncoding.EncodeToString(maxTime),
		"non-canonical b64":   strings.Replace(good, "qnA==", "qnB==", 1),
		"trailing space":      good + " ",
		"carriage return end": good + "\r\n",
	} {
		if _, err := seal.ParseCosignatureLine(line); !errors.Is(err, seal.ErrMalformedCosignature) {
			t.Errorf("%s: %v, want ErrMalformedCosignature", name, err)
		}
	}
}

// TestCosignatureVerifierKeyKnownAnswer: a public witness's verifier key (type 0x04, from
// transparency-dev/formats' tests) parses, which checks the key ID derivation, and prints back
// the same; keys of another type or with a wrong ID are refused.
func TestCosignatureVerifierKeyKnownAnswer(t *testing.T) {
	const remora = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
	v, err := seal.NewCosignatureVerifier(remora)
	if err != nil {
		t.Fatal(err)
	}
	if v.Name() != "remora.n621.de" || v.KeyHash() != 0xda77ade7 || v.String() != remora {
		t.Fatalf("parsed %s %08x %s", v.Name(), v.KeyHash(), v)
	}
	_, logVKey, _ := note.GenerateKey(nil, "log.example")
	for name, k := range map[string]string{
		"ed25519 note key (type 1)": logVKey,
		"wrong key ID":              "remora.n621.de+da77ade8+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
		"other name":                "remora.n621.de.x+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
		"short key":                 "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmt",
		"two parts":                 "remora.n621.de+da77ade7",
		"short id":                  "remora.n621.de+a77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
	} {
		if _, err := seal.NewCosignatureVerifier(k); !errors.Is(err, seal.ErrBadSigningKey) {
			t.Errorf("%s: %v, want ErrBadSigningKey", name, err)
		}
	}
}

// fixedSkey is a witness signing key from a fixed seed, so that signatures are known answers.
func fixedSkey(t testing.TB, name string) (string, ed25519.PrivateKey) {
	seed := sha256.Sum256([]byte("commseal cosignature test key " + name))
	priv := ed25519.NewKeyFromSeed(seed[:])
	pub := priv.Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	skey := fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, v.KeyHash(), base64.StdEncoding.EncodeToString(append([]byte{1}, seed[:]...)))
	return skey, priv
}

// TestCosignKnownAnswer signs the spec's example checkpoint with a fixed key at the spec's
// example time: the line is the one recorded when this test was written (Ed25519 is
// deterministic; a regression vector, not an outside one), and torchwood's
// verifier accepts what we signed.
func TestCosignKnownAnswer(t *testing.T) {
	skey, priv := fixedSkey(t, "witness.example.com/w1")
	s, err := seal.NewCosignatureSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Cosign(specCheckpoint, time.Unix(1679315147, 0))
	if err != nil {
		t.Fatal(err)
	}
	const want = "— witness.example.com/w1 /v/PpwAAAABkGFDL/OtU4IxhoMW971fLLkwX30nzEhwoUgdToNgX5LooZ2pBNXTW1nDAJOBbccwnzM/AVxnh2X6E1ofxr3XUz31bBA==\n"
	if c.Line() != want {
		t.Errorf("cosignature line\n%s want\n%s", c.Line(), want)
	}
	if c.Timestamp() != time.Unix(1679315147, 0).UTC() {
		t.Errorf("Timestamp() = %v", c.Timestamp())
	}

	// torchwood's verifier for the same key (it is built from the private key) accepts it,
	// and prints the same verifier key.
	tw, err := torchwood.NewCosignatureSigner("witness.example.com/w1", priv)
	if err != nil {
		t.Fatal(err)
	}
	if tw.Verifier().String() != s.VerifierKey() {
		t.Fatalf("torchwood vkey %s, ours %s", tw.Verifier(), s.VerifierKey())
	}
	signed := []byte(specCheckpoint + "\n" + c.Line())
	if _, err := note.Open(signed, note.VerifierList(tw.Verifier())); err != nil {
		t.Errorf("torchwood does not verify our cosignature: %v", err)
	}
}

// TestVerifyCosignaturesOfOthers: cosignatures made by torchwood verify with our verifier, with VerifyLine and through note.Open.
func TestVerifyCosignaturesOfOthers(t *testing.T) {
	skey, priv := fixedSkey(t, "witness.example/other")
	ours, err := seal.NewCosignatureSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := seal.NewCosignatureVerifier(ours.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	tw, err := torchwood.NewCosignatureSigner("witness.example/other", priv)
	if err != nil {
		t.Fatal(err)
	}
	text := specCheckpoint + "extension\n"
	for name, signer := range map[string]note.Signer{"torchwood": tw} {
		signed, err := note.Sign(&note.Note{Text: text}, signer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := note.Open(signed, note.VerifierList(v)); err != nil {
			t.Errorf("%s: note.Open with our verifier: %v", name, err)
		}
		line := string(signed[bytes.LastIndex(signed, []byte("\n\n"))+2:])
		c, err := v.VerifyLine(text, line)
		if err != nil {
			t.Errorf("%s: VerifyLine: %v", name, err)
		}
		if d := time.Since(c.Timestamp()); d < 0 || d > time.Minute {
			t.Errorf("%s: timestamp %v is not now", name, c.Timestamp())
		}
		// The same line over another checkpoint, or with the time changed, fails.
		if _, err := v.VerifyLine(specCheckpoint, line); !errors.Is(err, seal.ErrCosignature) {
			t.Errorf("%s: line over another text: %v, want ErrCosignature", name, err)
		}
		c.Time++
		if _, err := v.VerifyLine(text, c.Line()); !errors.Is(err, seal.ErrCosignature) {
			t.Errorf("%s: time changed: %v, want ErrCosignature", name, err)
		}
	}
}

func TestSignerIsNoteSigner(t *testing.T) {
	skey, vkey, err := seal.GenerateCosignatureKey("witness.example/w")
	if err != nil {
		t.Fatal(err)
	}
	s, err := seal.NewCosignatureSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	if s.VerifierKey() != vkey || s.Verifier().String() != vkey || s.Name() != "witness.example/w" {
		t.Fatalf("signer vkey %s, generated %s", s.VerifierKey(), vkey)
	}
	v, err := seal.NewCosignatureVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := note.Sign(&note.Note{Text: specCheckpoint}, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(signed, note.VerifierList(v)); err != nil {
		t.Fatal(err)
	}
	// The key as an ordinary note signer (type 0x01) has another key ID: its signatures are
	// not cosignatures, and the cosignature verifier does not claim them.
	ns, _ := note.NewSigner(skey)
	if ns.KeyHash() == s.KeyHash() {
		t.Fatal("cosignature key ID equals the Ed25519 note key ID")
	}
	// A note that is not a checkpoint cannot be cosigned.
	if _, err := note.Sign(&note.Note{Text: "hello\n"}, s); err == nil {
		t.Fatal("cosigned a note that is not a checkpoint")
	}
	if _, _, err := seal.GenerateCosignatureKey("has space"); !errors.Is(err, seal.ErrBadSigningKey) {
		t.Fatalf("GenerateCosignatureKey(has space) = %v", err)
	}
	if _, err := seal.NewCosignatureSigner("PRIVATE+KEY+x"); !errors.Is(err, seal.ErrBadSigningKey) {
		t.Fatalf("NewCosignatureSigner(bad) = %v", err)
	}
	if _, err := s.Cosign(specCheckpoint, time.Unix(-1, 0)); !errors.Is(err, seal.ErrMalformedCosignature) {
		t.Fatalf("Cosign before 1970 = %v", err)
	}
}

// policyFixture is a log key, a checkpoint it signed and three witnesses.
type policyFixture struct {
	logVKey string
	signed  []byte
	text    string
	ws      []*seal.CosignatureSigner
	wkeys   []string
}

func newPolicyFixture(t testing.TB) *policyFixture {
	t.Helper()
	skey, vkey, err := seal.GenerateSigningKey("log.example/ledger")
	if err != nil {
		t.Fatal(err)
	}
	ls, err := seal.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	c := seal.Checkpoint{Origin: "log.example/ledger", Size: 7, Root: sha256.Sum256([]byte("root"))}
	signed, err := seal.SignCheckpoint(c, ls)
	if err != nil {
		t.Fatal(err)
	}
	f := &policyFixture{logVKey: vkey, signed: signed, text: c.Text()}
	for i := range 3 {
		wsk, wvk, err := seal.GenerateCosignatureKey(fmt.Sprintf("witness.example/w%d", i))
		if err != nil {
			t.Fatal(err)
		}
		s, err := seal.NewCosignatureSigner(wsk)
		if err != nil {
			t.Fatal(err)
		}
		f.ws = append(f.ws, s)
		f.wkeys = append(f.wkeys, wvk)
	}
	return f
}

func (f *policyFixture) cosign(t testing.TB, signed []byte, ws ...*seal.CosignatureSigner) []byte {
	t.Helper()
	var cs []seal.Cosignature
	for _, w := range ws {
		c, err := w.Cosign(f.text, time.Unix(1700000000, 0))
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	out, err := seal.AddCosignatures(signed, cs...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWitnessPolicy(t *testing.T) {
	f := newPolicyFixture(t)
	p, err := seal.NewWitnessPolicy(f.logVKey, 2, f.wkeys...)
	if err != nil {
		t.Fatal(err)
	}

	two := f.cosign(t, f.signed, f.ws[0], f.ws[2])
	c, cs, err := p.Check(two)
	if err != nil {
		t.Fatalf("log + 2 of 3: %v", err)
	}
	if c.Size != 7 || len(cs) != 2 || cs[0].Name != "witness.example/w0" || cs[1].Name != "witness.example/w2" {
		t.Fatalf("checkpoint %+v, cosignatures %+v", c, cs)
	}

	one := f.cosign(t, f.signed, f.ws[1])
	if _, cs, err := p.Check(one); !errors.Is(err, seal.ErrQuorum) || len(cs) != 1 {
		t.Errorf("1 of 3 for quorum 2: %v (%d cosignatures), want ErrQuorum", err, len(cs))
	}

	// The same witness twice counts once; AddCosignatures keeps one line per key.
	dup := f.cosign(t, one, f.ws[1])
	if n := bytes.Count(dup, []byte("— witness.example/w1 ")); n != 1 {
		t.Errorf("AddCosignatures left %d lines of one witness", n)
	}
	dupLine := append(append([]byte(nil), one...), one[bytes.LastIndex(one, []byte("— witness")):]...)
	if _, _, err := p.Check(dupLine); !errors.Is(err, seal.ErrQuorum) {
		t.Errorf("one witness's line twice: %v, want ErrQuorum", err)
	}

	// A witness the policy does not know is ignored.
	stranger, _, _ := seal.GenerateCosignatureKey("witness.example/stranger")
	ss, _ := seal.NewCosignatureSigner(stranger)
	if _, cs, err := p.Check(f.cosign(t, one, ss)); !errors.Is(err, seal.ErrQuorum) || len(cs) != 1 {
		t.Errorf("unknown witness counted: %v, %d", err, len(cs))
	}

	// A bad cosignature by a policy witness refuses the note.
	bad := bytes.Replace(two, []byte("— witness.example/w2 "), []byte("— witness.example/w2 "), 1)
	i := bytes.LastIndex(bad, []byte("— witness.example/w2 ")) + len("— witness.example/w2 ") + 20
	if bad[i] == 'A' {
		bad[i] = 'B'
	} else {
		bad[i] = 'A'
	}
	if _, _, err := p.Check(bad); !errors.Is(err, seal.ErrCosignature) {
		t.Errorf("altered cosignature: %v, want ErrCosignature", err)
	}

	// No log signature: only cosignatures.
	cosOnly := []byte(f.text + "\n" + string(two[bytes.Index(two, []byte("— witness")):]))
	if _, _, err := p.Check(cosOnly); !errors.Is(err, seal.ErrCheckpointSignature) {
		t.Errorf("no log signature: %v, want ErrCheckpointSignature", err)
	}
	// Another log's signature.
	other := newPolicyFixture(t)
	if _, _, err := p.Check(other.cosign(t, other.signed, f.ws...)); err == nil {
		t.Error("a checkpoint of another log key passed")
	}
	if _, _, err := p.Check([]byte("garbage")); !errors.Is(err, seal.ErrMalformedCheckpoint) {
		t.Errorf("garbage: %v, want ErrMalformedCheckpoint", err)
	}

	// 16 post-quantum-sized signatures of unknown keys (signed-note: verifiers MUST accept
	// at least 16) are ignored, not refused.
	if _, cs, err := p.Check(withUnknownSignatures(two, 16)); err != nil || len(cs) != 2 {
		t.Errorf("note with 16 unknown ML-DSA-sized signatures: %v, %d cosignatures", err, len(cs))
	}

	// Quorum 0 is the log key alone.
	p0, err := seal.NewWitnessPolicy(f.logVKey, 0, f.wkeys...)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p0.Check(f.signed); err != nil {
		t.Errorf("quorum 0, log only: %v", err)
	}

	for name, args := range map[string]struct {
		k    int
		keys []string
	}{
		"quorum above n":  {4, f.wkeys},
		"negative quorum": {-1, f.wkeys},
		"duplicate key":   {1, []string{f.wkeys[0], f.wkeys[0]}},
		"log key as w":    {1, []string{f.logVKey}},
	} {
		if _, err := seal.NewWitnessPolicy(f.logVKey, args.k, args.keys...); !errors.Is(err, seal.ErrBadSigningKey) {
			t.Errorf("%s: %v, want ErrBadSigningKey", name, err)
		}
	}
}

func TestAddCosignaturesRefusesNonNotes(t *testing.T) {
	for _, b := range []string{"", "text\n", "text\n\n", "text\n\nno dash\n", "text\n\n— x y"} {
		if _, err := seal.AddCosignatures([]byte(b)); !errors.Is(err, seal.ErrMalformedCheckpoint) {
			t.Errorf("AddCosignatures(%q) = %v", b, err)
		}
	}
}

func FuzzParseCosignatureLine(f *testing.F) {
	f.Add("— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n")
	f.Add("— w ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==")
	f.Add("— x +")
	f.Fuzz(func(t *testing.T, line string) {
		c, err := seal.ParseCosignatureLine(line)
		if err != nil {
			if !errors.Is(err, seal.ErrMalformedCosignature) {
				t.Fatalf("error %v does not wrap ErrMalformedCosignature", err)
			}
			return
		}
		// What parses prints back as the same line, and parses to the same value.
		if got := c.Line(); got != strings.TrimSuffix(line, "\n")+"\n" {
			t.Fatalf("Line() = %q for input %q", got, line)
		}
		c2, err := seal.ParseCosignatureLine(c.Line())
		if err != nil || c2 != c {
			t.Fatalf("reparse: %+v, %v", c2, err)
		}
	})
}

func FuzzNewCosignatureVerifier(f *testing.F) {
	f.Add("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2")
	f.Add("a+00000000+BA==")
	f.Fuzz(func(t *testing.T, vkey string) {
		v, err := seal.NewCosignatureVerifier(vkey)
		if err != nil {
			if !errors.Is(err, seal.ErrBadSigningKey) {
				t.Fatalf("error %v does not wrap ErrBadSigningKey", err)
			}
			return
		}
		if v.String() != strings.TrimSpace(vkey) && !strings.EqualFold(v.String(), strings.TrimSpace(vkey)) {
			t.Fatalf("String() = %q for %q", v.String(), vkey)
		}
		v.Verify([]byte(specCheckpoint), make([]byte, 72))
	})
}

// FuzzWitnessPolicyCheck feeds arbitrary notes to a policy: it never panics, every error wraps
// one of the documented sentinels, and a note it accepts carries the quorum.
func FuzzWitnessPolicyCheck(f *testing.F) {
	fx := newPolicyFixture(f)
	f.Add(fx.signed)
	f.Add(fx.cosign(f, fx.signed, fx.ws[0]))
	f.Add(fx.cosign(f, fx.signed, fx.ws...))
	p, err := seal.NewWitnessPolicy(fx.logVKey, 1, fx.wkeys...)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, signed []byte) {
		c, cs, err := p.Check(signed)
		if err != nil {
			for _, s := range []error{seal.ErrMalformedCheckpoint, seal.ErrCheckpointSignature, seal.ErrCosignature, seal.ErrQuorum, seal.ErrMalformedCosignature} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("undocumented error %v", err)
		}
		if len(cs) < 1 || c.Origin != "log.example/ledger" {
			t.Fatalf("accepted %+v with %d cosignatures", c, len(cs))
		}
		for _, co := range cs {
			if _, err := seal.ParseCosignatureLine(co.Line()); err != nil {
				t.Fatalf("returned cosignature does not parse: %v", err)
			}
		}
	})
}

// withUnknownSignatures appends n signature lines of unknown keys, each the size of an
// ML-DSA-44 cosignature.
func withUnknownSignatures(signed []byte, n int) []byte {
	out := bytes.Clone(signed)
	for i := range n {
		sig := make([]byte, 4+8+2420)
		sig[0] = byte(i)
		out = fmt.Appendf(out, "— pq%d.example/w %s\n", i, base64.StdEncoding.EncodeToString(sig))
	}
	return out
}
