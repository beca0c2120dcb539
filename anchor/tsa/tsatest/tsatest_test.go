package tsatest_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/notaryproject/tspclient-go"

	"github.com/commseal/commseal/anchor/tsa/tsatest"
)

func query(t testing.TB, data []byte) (*tspclient.Request, []byte) {
	t.Helper()
	req, err := tspclient.NewRequest(tspclient.RequestOptions{Content: data, HashAlgorithm: crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	q, err := req.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return req, q
}

// TestTokensVerifyIndependently: the Authority's replies pass tspclient-go's own checks of a
// reply against its request and of the token against the root, with the clock it is given.
func TestTokensVerifyIndependently(t *testing.T) {
	a, err := tsatest.NewAuthority()
	if err != nil {
		t.Fatal(err)
	}
	back := time.Date(2019, 5, 1, 12, 0, 0, 0, time.UTC)
	a.SetClock(func() time.Time { return back })
	req, q := query(t, []byte("data"))
	body, err := a.Respond(q)
	if err != nil {
		t.Fatal(err)
	}
	var resp tspclient.Response
	if err := resp.UnmarshalBinary(body); err != nil {
		t.Fatal(err)
	}
	if err := resp.Validate(req); err != nil {
		t.Fatal(err)
	}
	st, err := resp.SignedToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Verify(context.Background(), x509.VerifyOptions{Roots: a.Roots(), CurrentTime: back}); err != nil {
		t.Fatal(err)
	}
	info, err := st.Info()
	if err != nil {
		t.Fatal(err)
	}
	if !info.GenTime.Equal(back) {
		t.Fatalf("genTime %v, clock %v", info.GenTime, back)
	}
	a.SetClock(nil)
	body, err = a.Respond(q)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.UnmarshalBinary(body); err != nil {
		t.Fatal(err)
	}
	st, _ = resp.SignedToken()
	if info, _ = st.Info(); time.Since(info.GenTime) > time.Minute {
		t.Fatalf("SetClock(nil) left genTime at %v", info.GenTime)
	}
}

// TestRejectsBadQueries: requests the Authority cannot serve get an RFC 3161 rejection, not a
// token.
func TestRejectsBadQueries(t *testing.T) {
	a, err := tsatest.NewAuthority()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := query(t, []byte("data"))
	req.ReqPolicy = []int{1, 2, 3}
	badPolicy, err := req.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range [][]byte{[]byte("junk"), badPolicy} {
		body, err := a.Respond(q)
		if err != nil {
			t.Fatal(err)
		}
		var resp tspclient.Response
		if err := resp.UnmarshalBinary(body); err != nil {
			t.Fatal(err)
		}
		if resp.Status.Err() == nil || len(resp.TimestampToken.FullBytes) != 0 {
			t.Fatalf("bad query %x answered with status %v", q, resp.Status.Status)
		}
	}
}

// TestCloseReleasesHang: a request held by Hang ends when the server closes; Close does not
// wait for the client to give up.
func TestCloseReleasesHang(t *testing.T) {
	s, err := tsatest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	s.SetFault(tsatest.Hang)
	_, q := query(t, []byte("data"))
	done := make(chan error, 1)
	go func() {
		resp, err := http.Post(s.URL, tspclient.MediaTypeTimestampQuery, bytes.NewReader(q))
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	for s.Requests() == 0 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close blocked on a hanging request")
	}
	<-done
}

func ExampleNewServer() {
	s, err := tsatest.NewServer()
	if err != nil {
		panic(err)
	}
	defer s.Close()
	s.SetClock(func() time.Time { return time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC) }) // a backdated token
	req, err := tspclient.NewRequest(tspclient.RequestOptions{Content: []byte("checkpoint"), HashAlgorithm: crypto.SHA256})
	if err != nil {
		panic(err)
	}
	q, err := req.MarshalBinary()
	if err != nil {
		panic(err)
	}
	resp, err := http.Post(s.URL, tspclient.MediaTypeTimestampQuery, bytes.NewReader(q))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status, resp.Header.Get("Content-Type"), s.Requests())
	// Output:
	// 200 OK application/timestamp-reply 1
}
