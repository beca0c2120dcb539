package console_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/console"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store/memstore"
)

// An accounts file names each user, their role and an Argon2id hash of their password
// (console.HashPassword, or `go run ./examples/console -hash-password`).
func ExampleParseAccounts() {
	hash, _ := console.HashPasswordParams("correct horse", 64, 1, 1) // cheap parameters for the example
	accts, err := console.ParseAccounts(strings.NewReader("# compliance\nAlice Wong officer "+hash+"\nbob auditor -\n"), "accounts")
	fmt.Println(err)
	for _, a := range accts {
		fmt.Println(a.Name, a.Role)
	}
	// Output:
	// <nil>
	// Alice Wong officer
	// bob auditor
}

// The console is an http.Handler over an open ledger; a first visit is sent to sign in.
func ExampleNew() {
	ctx := context.Background()
	skey, _, _ := seal.GenerateSigningKey("example.com/console")
	key, _ := seal.ParseSigningKey(skey)
	l, _ := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: key})
	defer l.Close()
	hash, _ := console.HashPasswordParams("correct horse battery staple", 64, 1, 1) // HashPassword in real use
	h, err := console.New(console.Options{Ledger: l, Signer: key.Signer,
		Accounts: []console.Account{{Name: "alice", Role: "officer", Hash: hash}}})
	fmt.Println(err)

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/search?q=微信", nil))
	fmt.Println(w.Code, w.Header().Get("Location"))
	fmt.Println(w.Header().Get("X-Frame-Options"))
	// Output:
	// <nil>
	// 303 /signin?next=%2Fsearch%3Fq%3D%E5%BE%AE%E4%BF%A1
	// DENY
}
