package tsa_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/notaryproject/tspclient-go"
	"golang.org/x/mod/sumdb/note"

	"github.com/commseal/commseal/anchor/tsa"
	"github.com/commseal/commseal/anchor/tsa/tsatest"
	"github.com/commseal/commseal/internal/testenv"
	"github.com/commseal/commseal/seal"
)

// signedCheckpoint returns a real signed checkpoint note of the given size, as the ledger
// stores it.
func signedCheckpoint(t testing.TB, size uint64) []byte {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, "example.com/commseal/test-ledger")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	c := seal.Checkpoint{Origin: signer.Name(), Size: size, Root: sha256.Sum256(fmt.Appendf(nil, "root %d", size))}
	b, err := seal.SignCheckpoint(c, signer)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newServer(t testing.TB) *tsatest.Server {
	t.Helper()
	s, err := tsatest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func newClient(t testing.TB, s *tsatest.Server, opts tsa.Options, policy ...int) *tsa.Client {
	t.Helper()
	c, err := tsa.NewClient(s.Roots(), []tsa.TSA{{Name: "local", URL: s.URL, Policy: policy}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func stamp(t testing.TB, s *tsatest.Server, cp []byte) *tsa.Token {
	t.Helper()
	tok, err := newClient(t, s, tsa.Options{}).Stamp(context.Background(), "local", cp)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRoundTrip(t *testing.T) {
	s := newServer(t)
	cp := signedCheckpoint(t, 42)
	before := time.Now().Add(-time.Second)
	tok := stamp(t, s, cp)
	if tok.Time.Before(before.Truncate(time.Second)) || tok.Time.After(time.Now()) {
		t.Errorf("token time %v, want about now", tok.Time)
	}
	if tok.Time.Location() != time.UTC {
		t.Errorf("token time %v not UTC", tok.Time)
	}
	if tok.TSA != s.Certificate().Subject.String() {
		t.Errorf("TSA %q, want %q", tok.TSA, s.Certificate().Subject)
	}
	if tok.Serial == nil || tok.Serial.Sign() <= 0 || tok.Nonce == nil {
		t.Errorf("serial %v nonce %v", tok.Serial, tok.Nonce)
	}
	if !tok.Policy.Equal(tsatest.DefaultPolicy) || tok.Accuracy != time.Second {
		t.Errorf("policy %v accuracy %v", tok.Policy, tok.Accuracy)
	}
	if len(tok.Chain) != 2 || !tok.Chain[0].Equal(s.Certificate()) || !tok.Chain[1].Equal(s.CA()) {
		t.Errorf("chain of %d certificates, want TSA then root", len(tok.Chain))
	}
	// What a verifier reading the anchor entry later does: only the DER, the checkpoint and
	// the roots.
	got, err := tsa.Verify(tok.DER, cp, s.Roots())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(tok.Time) || got.Serial.Cmp(tok.Serial) != 0 || got.TSA != tok.TSA {
		t.Errorf("Verify = %v %v %q; Stamp gave %v %v %q", got.Time, got.Serial, got.TSA, tok.Time, tok.Serial, tok.TSA)
	}
	// Two stamps of one checkpoint are two tokens with different serials and nonces.
	tok2 := stamp(t, s, cp)
	if tok2.Serial.Cmp(tok.Serial) == 0 || tok2.Nonce.Cmp(tok.Nonce) == 0 {
		t.Errorf("second stamp reused serial %v or nonce %v", tok.Serial, tok.Nonce)
	}
}

// TestVerifyRefuses: each way a stored token can be wrong gives its own sentinel error.
func TestVerifyRefuses(t *testing.T) {
	s := newServer(t)
	cp := signedCheckpoint(t, 7)
	tok := stamp(t, s, cp)
	other := newServer(t) // another CA: its root must not vouch for s's tokens

	t.Run("wrong checkpoint", func(t *testing.T) {
		for _, data := range [][]byte{signedCheckpoint(t, 8), append(append([]byte(nil), cp...), '\n'), cp[:len(cp)-1]} {
			_, err := tsa.Verify(tok.DER, data, s.Roots())
			if !errors.Is(err, tsa.ErrImprint) {
				t.Errorf("Verify over other bytes: %v, want ErrImprint", err)
			}
		}
	})
	t.Run("untrusted root", func(t *testing.T) {
		_, err := tsa.Verify(tok.DER, cp, other.Roots())
		if !errors.Is(err, tsa.ErrUntrusted) {
			t.Fatalf("Verify against another root: %v, want ErrUntrusted", err)
		}
		if _, err := tsa.Verify(tok.DER, cp, nil); !errors.Is(err, tsa.ErrUntrusted) {
			t.Fatalf("Verify with no roots: %v, want ErrUntrusted", err)
		}
	})
	t.Run("tampered time", func(t *testing.T) {
		bad := tamper(t, tok.DER, []byte(tok.Time.Format("20060102150405Z")), func(b []byte) { b[3] = '0' + (b[3]-'0'+1)%10 }) // another year, still a valid time
		_, err := tsa.Verify(bad, cp, s.Roots())
		if !errors.Is(err, tsa.ErrSignature) {
			t.Fatalf("Verify of a token with an altered time: %v, want ErrSignature", err)
		}
	})
	t.Run("tampered signature", func(t *testing.T) {
		bad := append([]byte(nil), tok.DER...)
		bad[len(bad)-3] ^= 0x01 // inside the ECDSA signature, the token's last field
		_, err := tsa.Verify(bad, cp, s.Roots())
		if !errors.Is(err, tsa.ErrSignature) {
			t.Fatalf("Verify of a token with an altered signature: %v, want ErrSignature", err)
		}
	})
	t.Run("altered certificate", func(t *testing.T) {
		// The token names its signer by hash (ESSCertIDv2): a certificate altered in place
		// (here a byte of its CA signature, which parses the same) is refused before any chain
		// is built.
		raw := s.Certificate().Raw
		bad := tamper(t, tok.DER, raw, func(b []byte) { b[len(b)-2] ^= 0x01 })
		_, err := tsa.Verify(bad, cp, s.Roots())
		if !errors.Is(err, tsa.ErrSignature) {
			t.Fatalf("Verify with an altered certificate: %v, want ErrSignature", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		s.SetFault(tsatest.WrongKey)
		defer s.SetFault(tsatest.None)
		_, err := newClient(t, s, tsa.Options{}).Stamp(context.Background(), "local", cp)
		if !errors.Is(err, tsa.ErrSignature) {
			t.Fatalf("token signed by another key: %v, want ErrSignature", err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		for _, b := range [][]byte{nil, []byte("garbage"), tok.DER[:len(tok.DER)/2], make([]byte, tsa.MaxTokenSize+1)} {
			if _, err := tsa.Verify(b, cp, s.Roots()); !errors.Is(err, tsa.ErrMalformed) {
				t.Errorf("Verify(%d bytes of junk): %v, want ErrMalformed", len(b), err)
			}
		}
	})
}

// TestVerifyAtTokenTime: certificates are checked at the token's time. A token issued while
// its TSA certificate was valid still verifies after the certificate expired; a token whose
// time is outside the certificate's validity does not.
func TestVerifyAtTokenTime(t *testing.T) {
	a, err := tsatest.NewAuthorityConfig(tsatest.Config{
		NotBefore: time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:  time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	cp := signedCheckpoint(t, 3)
	token := func(at time.Time) []byte {
		t.Helper()
		a.SetClock(func() time.Time { return at })
		req, err := tspclient.NewRequest(tspclient.RequestOptions{Content: cp, HashAlgorithm: crypto.SHA256})
		if err != nil {
			t.Fatal(err)
		}
		q, err := req.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		body, err := a.Respond(q)
		if err != nil {
			t.Fatal(err)
		}
		var resp tspclient.Response
		if err := resp.UnmarshalBinary(body); err != nil {
			t.Fatal(err)
		}
		return resp.TimestampToken.FullBytes
	}
	then := time.Date(2012, 6, 1, 0, 0, 0, 0, time.UTC)
	tok, err := tsa.Verify(token(then), cp, a.Roots())
	if err != nil {
		t.Fatalf("token from 2012, certificate expired in 2015: %v", err)
	}
	if !tok.Time.Equal(then) {
		t.Fatalf("time %v, want %v", tok.Time, then)
	}
	for _, at := range []time.Time{time.Date(2009, 1, 1, 0, 0, 0, 0, time.UTC), time.Now()} {
		if _, err := tsa.Verify(token(at), cp, a.Roots()); !errors.Is(err, tsa.ErrUntrusted) {
			t.Errorf("token dated %v, outside the certificate's validity: %v, want ErrUntrusted", at, err)
		}
	}
}

// tamper returns a copy of b with the first occurrence of old changed by f.
func tamper(t *testing.T, b, old []byte, f func([]byte)) []byte {
	t.Helper()
	i := strings.Index(string(b), string(old))
	if i < 0 {
		t.Fatalf("%q not found in the token", old)
	}
	c := append([]byte(nil), b...)
	f(c[i : i+len(old)])
	return c
}

// TestStampRefuses: each way a TSA can fail or misbehave gives the client's caller a typed
// error naming the TSA, and the client never waits past its timeout.
func TestStampRefuses(t *testing.T) {
	s := newServer(t)
	cp := signedCheckpoint(t, 9)
	for _, tc := range []struct {
		fault tsatest.Fault
		want  error
	}{
		{tsatest.Down, tsa.ErrUnavailable},
		{tsatest.HTTP500, tsa.ErrUnavailable},
		{tsatest.Hang, tsa.ErrUnavailable},
		{tsatest.Garbage, tsa.ErrMalformed},
		{tsatest.Rejection, tsa.ErrRejected},
		{tsatest.WrongKey, tsa.ErrSignature},
		{tsatest.WrongNonce, tsa.ErrNonce},
		{tsatest.WrongImprint, tsa.ErrImprint},
		{tsatest.WrongPolicy, tsa.ErrPolicy},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			s.SetFault(tc.fault)
			defer s.SetFault(tsatest.None)
			var policy []int
			if tc.fault == tsatest.WrongPolicy {
				policy = tsatest.DefaultPolicy
			}
			c := newClient(t, s, tsa.Options{Timeout: 300 * time.Millisecond}, policy...)
			start := time.Now()
			tok, err := c.Stamp(context.Background(), "local", cp)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Stamp = %v, %v; want %v", tok, err, tc.want)
			}
			var te *tsa.Error
			if !errors.As(err, &te) || te.TSA != "local" {
				t.Fatalf("error %v does not name the TSA", err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("Stamp took %v", d)
			}
			t.Log(err)
		})
	}
	t.Run("closed", func(t *testing.T) {
		gone := newServer(t)
		gone.Close()
		c := newClient(t, gone, tsa.Options{})
		if _, err := c.Stamp(context.Background(), "local", cp); !errors.Is(err, tsa.ErrUnavailable) {
			t.Fatalf("Stamp to a closed port: %v, want ErrUnavailable", err)
		}
	})
	t.Run("context", func(t *testing.T) {
		s.SetFault(tsatest.Hang)
		defer s.SetFault(tsatest.None)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := newClient(t, s, tsa.Options{}).Stamp(ctx, "local", cp) // default 30 s timeout
		if !errors.Is(err, tsa.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stamp with an expiring context: %v", err)
		}
	})
	t.Run("recovers", func(t *testing.T) {
		if _, err := newClient(t, s, tsa.Options{}).Stamp(context.Background(), "local", cp); err != nil {
			t.Fatalf("after the faults end: %v", err)
		}
	})
}

// TestStampAll: several TSAs each stamp; one down does not stop the others.
func TestStampAll(t *testing.T) {
	a, b, c := newServer(t), newServer(t), newServer(t)
	roots := a.Roots()
	roots.AddCert(b.CA())
	roots.AddCert(c.CA())
	b.SetFault(tsatest.Hang)
	cl, err := tsa.NewClient(roots, []tsa.TSA{{Name: "a", URL: a.URL}, {Name: "b", URL: b.URL}, {Name: "c", URL: c.URL}},
		tsa.Options{Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cp := signedCheckpoint(t, 100)
	res := cl.StampAll(context.Background(), cp)
	if len(res) != 3 || res[0].TSA != "a" || res[1].TSA != "b" || res[2].TSA != "c" {
		t.Fatalf("results %+v", res)
	}
	for _, i := range []int{0, 2} {
		if res[i].Err != nil {
			t.Fatalf("TSA %s: %v", res[i].TSA, res[i].Err)
		}
		if _, err := tsa.Verify(res[i].Token.DER, cp, roots); err != nil {
			t.Fatal(err)
		}
	}
	if !errors.Is(res[1].Err, tsa.ErrUnavailable) || res[1].Token != nil {
		t.Fatalf("hanging TSA: %+v", res[1])
	}
	if res[0].Token.TSA == res[2].Token.TSA {
		// Different authorities, same test subject name: told apart by their chains.
		if res[0].Token.Chain[1].Equal(res[2].Token.Chain[1]) {
			t.Fatal("two TSAs, one root")
		}
	}
}

func TestNewClientRefuses(t *testing.T) {
	s := newServer(t)
	for _, tsas := range [][]tsa.TSA{
		nil,
		{{Name: "", URL: s.URL}},
		{{Name: "x", URL: s.URL}, {Name: "x", URL: s.URL}},
		{{Name: "x", URL: "ftp://example.com/"}},
		{{Name: "x", URL: "/relative"}},
	} {
		if _, err := tsa.NewClient(s.Roots(), tsas, tsa.Options{}); err == nil {
			t.Errorf("NewClient(%+v) accepted", tsas)
		}
	}
	if _, err := tsa.NewClient(nil, []tsa.TSA{{Name: "x", URL: s.URL}}, tsa.Options{}); err == nil {
		t.Error("NewClient without roots accepted")
	}
	c := newClient(t, s, tsa.Options{})
	if _, err := c.Stamp(context.Background(), "nobody", []byte("x")); err == nil {
		t.Error("Stamp with an unknown TSA name accepted")
	}
	n := s.Requests()
	if _, err := c.Stamp(context.Background(), "local", nil); err == nil {
		t.Error("Stamp of an empty checkpoint accepted")
	}
	if r := c.StampAll(context.Background(), []byte{}); len(r) != 1 || r[0].Err == nil || r[0].Token != nil {
		t.Errorf("StampAll of an empty checkpoint: %+v", r)
	}
	if s.Requests() != n {
		t.Errorf("%d requests sent for refused calls", s.Requests()-n)
	}
}

// TestBackdated: a TSA whose clock is set back yields a token that verifies on its own but is
// flagged against the earlier anchors.
func TestBackdated(t *testing.T) {
	s := newServer(t)
	var anchors []tsa.Anchor
	add := func(size uint64) {
		tok := stamp(t, s, signedCheckpoint(t, size))
		anchors = append(anchors, tsa.Anchor{Size: size, Time: tok.Time, Accuracy: tok.Accuracy, TSA: tok.TSA})
	}
	now := time.Now()
	for i, size := range []uint64{10, 20, 30} {
		s.SetClock(func() time.Time { return now.Add(time.Duration(i) * time.Hour) })
		add(size)
	}
	if f := tsa.CheckOrder(anchors); len(f) != 0 {
		t.Fatalf("honest anchors flagged: %v", f)
	}
	s.SetClock(func() time.Time { return now.Add(90 * time.Minute) }) // before size 30's token
	add(40)
	s.SetClock(func() time.Time { return now.Add(3 * time.Hour) })
	add(50)
	f := tsa.CheckOrder(anchors)
	if len(f) != 1 || f[0].Index != 3 || f[0].Prev.Size != 30 || !errors.Is(&f[0], tsa.ErrBackdated) {
		t.Fatalf("CheckOrder = %v; want anchor 3 (size 40) flagged against size 30", f)
	}
	t.Log(&f[0])
}

func TestCheckOrder(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	at := func(size uint64, sec int) tsa.Anchor {
		return tsa.Anchor{Size: size, Time: t0.Add(time.Duration(sec) * time.Second), Accuracy: time.Second}
	}
	for _, tc := range []struct {
		name    string
		anchors []tsa.Anchor
		flagged []int
	}{
		{"empty", nil, nil},
		{"increasing", []tsa.Anchor{at(1, 0), at(2, 10), at(3, 20)}, nil},
		{"same size, TSAs disagree", []tsa.Anchor{at(5, 10), at(5, 0), at(6, 11)}, nil},
		{"within accuracy", []tsa.Anchor{at(1, 10), at(2, 9)}, nil},
		{"backdated", []tsa.Anchor{at(1, 10), at(2, 20), at(3, 5), at(4, 30)}, []int{2}},
		{"backdated against the latest smaller", []tsa.Anchor{at(1, 100), at(2, 50), at(3, 60)}, []int{1, 2}},
		{"late token for an old checkpoint", []tsa.Anchor{at(1, 0), at(3, 20), at(2, 500), at(4, 501)}, nil},
		{"backdated after a late token", []tsa.Anchor{at(1, 0), at(3, 20), at(2, 500), at(4, 400)}, []int{3}},
		{"earlier-anchored larger is not compared", []tsa.Anchor{at(9, 100), at(2, 0)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			for _, f := range tsa.CheckOrder(tc.anchors) {
				got = append(got, f.Index)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.flagged) {
				t.Fatalf("flagged %v, want %v", got, tc.flagged)
			}
		})
	}
}

// TestOpenSSLVerifies: a third party checks a checkpoint and its token with OpenSSL alone.
func TestOpenSSLVerifies(t *testing.T) {
	openssl := testenv.Program(t, "openssl", "apt-get install openssl")
	s := newServer(t)
	cp := signedCheckpoint(t, 1234)
	tok := stamp(t, s, cp)
	dir := t.TempDir()
	files := map[string][]byte{"checkpoint": cp, "token.der": tok.DER, "ca.pem": s.CAPEM(), "tsa.pem": s.CertificatePEM()}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	verify := func(data string, extra ...string) (string, error) {
		args := append([]string{"ts", "-verify", "-data", filepath.Join(dir, data),
			"-in", filepath.Join(dir, "token.der"), "-token_in",
			"-CAfile", filepath.Join(dir, "ca.pem"), "-untrusted", filepath.Join(dir, "tsa.pem")}, extra...)
		cmd := exec.Command(openssl, args...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := verify("checkpoint")
	t.Logf("openssl ts -verify:\n%s", out)
	if err != nil || !strings.Contains(out, "Verification: OK") {
		t.Fatalf("openssl ts -verify: %v\n%s", err, out)
	}
	// And it is a real check: other bytes fail.
	if err := os.WriteFile(filepath.Join(dir, "other"), signedCheckpoint(t, 1235), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := verify("other"); err == nil || strings.Contains(out, "Verification: OK") {
		t.Fatalf("openssl accepted the token over another checkpoint:\n%s", out)
	}

	// A token whose TSA certificate has expired since: OpenSSL checks the chain at the current
	// time unless told the token's time with -attime (as Verify does by itself).
	old, err := tsatest.NewAuthorityConfig(tsatest.Config{
		NotBefore: time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:  time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	then := time.Date(2012, 6, 1, 0, 0, 0, 0, time.UTC)
	old.SetClock(func() time.Time { return then })
	srv := httptest.NewServer(old)
	defer srv.Close()
	c, err := tsa.NewClient(old.Roots(), []tsa.TSA{{Name: "old", URL: srv.URL}}, tsa.Options{})
	if err != nil {
		t.Fatal(err)
	}
	otok, err := c.Stamp(context.Background(), "old", cp)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"token.der": otok.DER, "ca.pem": old.CAPEM(), "tsa.pem": old.CertificatePEM()} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := verify("checkpoint"); err == nil || strings.Contains(out, "Verification: OK") {
		t.Fatalf("openssl accepted an expired TSA certificate at the current time:\n%s", out)
	}
	out, err = verify("checkpoint", "-attime", fmt.Sprint(then.Unix()))
	t.Logf("openssl ts -verify -attime %d (certificate expired in 2015):\n%s", then.Unix(), out)
	if err != nil || !strings.Contains(out, "Verification: OK") {
		t.Fatalf("openssl ts -verify -attime: %v\n%s", err, out)
	}
}

// TestHandlerRefusesNonQueries: the local TSA speaks RFC 3161 3.4 only.
func TestHandlerRefusesNonQueries(t *testing.T) {
	s := newServer(t)
	resp, err := http.Get(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %s", resp.Status)
	}
	resp, err = http.Post(s.URL, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("POST text/plain: %s", resp.Status)
	}
}

// TestVerifiesOpenSSLTokens: tokens that OpenSSL's TSA (`openssl ts -reply`) signs, as the
// tsatest TSA, verify with Verify: the verifier is not fitted to one signer's encoding. A token
// whose certificate is named only by the SHA-1 ESSCertID of RFC 3161's first edition is refused
// with ErrSignature (tspclient-go accepts ESSCertIDv2 only; see the package doc).
func TestVerifiesOpenSSLTokens(t *testing.T) {
	openssl := testenv.Program(t, "openssl", "apt-get install openssl")
	s := newServer(t)
	cp := signedCheckpoint(t, 77)
	dir := t.TempDir()
	key, err := s.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	data, tsaPEM, keyPEM := write("checkpoint", cp), write("tsa.pem", s.CertificatePEM()), write("tsa.key", key)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	query := filepath.Join(dir, "q.tsq")
	run("ts", "-query", "-data", data, "-sha256", "-cert", "-out", query)
	for _, tc := range []struct {
		essAlg string
		want   error
	}{
		{"sha256", nil},
		{"sha1", tsa.ErrSignature},
	} {
		t.Run(tc.essAlg, func(t *testing.T) {
			cfg := write("tsa-"+tc.essAlg+".cnf", fmt.Appendf(nil, `[ tsa ]
default_tsa = tsa1
[ tsa1 ]
serial = %s
signer_cert = %s
signer_key = %s
signer_digest = sha256
default_policy = %s
digests = sha256
accuracy = secs:1
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = %s
`, filepath.Join(dir, "serial"), tsaPEM, keyPEM, tsatest.DefaultPolicy, tc.essAlg))
			token := filepath.Join(dir, "token-"+tc.essAlg+".der")
			run("ts", "-reply", "-config", cfg, "-queryfile", query, "-token_out", "-out", token)
			der, err := os.ReadFile(token)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := tsa.Verify(der, cp, s.Roots())
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Verify of OpenSSL's token (ESSCertID %s): %v, want %v", tc.essAlg, err, tc.want)
			}
			if err == nil && (time.Since(tok.Time) > time.Minute || !tok.Policy.Equal(tsatest.DefaultPolicy)) {
				t.Fatalf("OpenSSL's token: time %v policy %v", tok.Time, tok.Policy)
			}
			t.Logf("ESSCertID %s: %v", tc.essAlg, err)
		})
	}
}

// BenchmarkVerify measures Verify of one token (ECDSA P-256 TSA, one intermediate-free chain)
// against the baseline a ledger verifier pays per checkpoint anyway: opening the signed
// checkpoint note (Ed25519).
func BenchmarkVerify(b *testing.B) {
	s := newServer(b)
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.com/commseal/bench")
	if err != nil {
		b.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		b.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		b.Fatal(err)
	}
	cp, err := seal.SignCheckpoint(seal.Checkpoint{Origin: signer.Name(), Size: 1}, signer)
	if err != nil {
		b.Fatal(err)
	}
	tok := stamp(b, s, cp)
	roots := s.Roots()
	b.Run("OpenCheckpoint", func(b *testing.B) {
		for b.Loop() {
			if _, err := seal.OpenCheckpoint(cp, verifier); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Verify", func(b *testing.B) {
		for b.Loop() {
			if _, err := tsa.Verify(tok.DER, cp, roots); err != nil {
				b.Fatal(err)
			}
		}
	})
}
