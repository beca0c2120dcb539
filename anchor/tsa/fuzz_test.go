package tsa

import (
	"crypto"
	"encoding/asn1"
	"errors"
	"testing"

	"github.com/notaryproject/tspclient-go"

	"github.com/commseal/commseal/anchor/tsa/tsatest"
)

var sentinels = []error{ErrMalformed, ErrImprint, ErrSignature, ErrUntrusted, ErrNonce, ErrPolicy, ErrRejected, ErrUnavailable}

func wrapsSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// fuzzSetup returns a local TSA, a checkpoint, a request for it, and the TSA's replies to that
// request under each fault that still yields a reply.
func fuzzSetup(f testing.TB) (*tsatest.Authority, []byte, *tspclient.Request, [][]byte) {
	a, err := tsatest.NewAuthority()
	if err != nil {
		f.Fatal(err)
	}
	cp := []byte("example.com/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— example.com/log AAAA\n")
	req, err := tspclient.NewRequest(tspclient.RequestOptions{Content: cp, HashAlgorithm: crypto.SHA256})
	if err != nil {
		f.Fatal(err)
	}
	q, err := req.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	var replies [][]byte
	for _, fault := range []tsatest.Fault{tsatest.None, tsatest.Rejection, tsatest.WrongKey, tsatest.WrongNonce, tsatest.WrongImprint, tsatest.WrongPolicy} {
		a.SetFault(fault)
		r, err := a.Respond(q)
		if err != nil {
			f.Fatal(err)
		}
		replies = append(replies, r)
	}
	a.SetFault(tsatest.None)
	return a, cp, req, replies
}

// FuzzVerify: Verify, the entry point for stored tokens, never panics, refuses with a sentinel
// error, and accepts only tokens over the checkpoint that chain to the roots.
func FuzzVerify(f *testing.F) {
	a, cp, _, replies := fuzzSetup(f)
	for _, r := range replies {
		var resp tspclient.Response
		if _, err := asn1.Unmarshal(r, &resp); err == nil && len(resp.TimestampToken.FullBytes) > 0 {
			f.Add(resp.TimestampToken.FullBytes)
		}
	}
	f.Add([]byte{0x30, 0x80, 0x00, 0x00})
	roots := a.Roots()
	f.Fuzz(func(t *testing.T, token []byte) {
		tok, err := Verify(token, cp, roots)
		if err != nil {
			if !wrapsSentinel(err) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if string(tok.DER) != string(token) || len(tok.Chain) == 0 || !tok.Chain[len(tok.Chain)-1].Equal(a.CA()) {
			t.Fatalf("accepted token: DER changed or chain %d long not ending at the root", len(tok.Chain))
		}
	})
}

// FuzzCheckResponse: the reply parser never panics, refuses with a sentinel error, and what it
// accepts carries the request's nonce and verifies.
func FuzzCheckResponse(f *testing.F) {
	a, cp, req, replies := fuzzSetup(f)
	for _, r := range replies {
		f.Add(r)
	}
	f.Add([]byte("garbage"))
	roots := a.Roots()
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := checkResponse(body, req, nil, cp, roots)
		if err != nil {
			if !wrapsSentinel(err) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if tok.Nonce == nil || tok.Nonce.Cmp(req.Nonce) != 0 {
			t.Fatalf("accepted a reply with nonce %v, sent %v", tok.Nonce, req.Nonce)
		}
		if _, err := Verify(tok.DER, cp, roots); err != nil {
			t.Fatalf("accepted a reply whose token does not verify: %v", err)
		}
	})
}
