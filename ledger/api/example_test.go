package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/api"
	"github.com/commseal/commseal/ledger/search"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store/memstore"
)

// The process that owns a ledger serves it; a compliance officer's tool searches it with a
// bearer token and a reason, and the search is sealed in the ledger before it answers.
func ExampleNew() {
	ctx := context.Background()
	skey, _, _ := seal.GenerateSigningKey("example.com/hk-equities")
	key, _ := seal.ParseSigningKey(skey)
	l, err := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: key,
		Encryption: &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: &memstore.KeyVault{}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	sent := time.Date(2026, 7, 1, 9, 30, 0, 0, time.UTC)
	for i, text := range []string{"buy 100 0700.HK", "add me on WhatsApp", "lunch?"} {
		l.Append(ctx, &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: fmt.Sprint("m", i),
			Kind: capture.KindText, Conversation: capture.Conversation{ID: "cid-desk", Type: capture.ConversationGroup},
			Sender: capture.Party{ID: "u1", Name: "Trader"}, SentAt: sent.Add(time.Duration(i) * time.Minute),
			Text: text, Raw: []byte(`{}`)})
	}
	ix, err := search.Open(ctx, l, search.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ix.Close()

	// The token file holds digests, never tokens: hand "s3cret" to Alice, keep its SHA-256.
	file := "# name role\n" + api.HashToken("s3cret") + " alice@compliance officer\n"
	tokens, err := api.ParseTokens(strings.NewReader(file), "api-tokens")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(api.New(api.Options{Ledger: l, Index: ix, Auth: tokens, Signer: key.Signer}))
	defer srv.Close()

	ask := func(token, why, query string) {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/search", strings.NewReader(query))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set(api.WhyHeader, why)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		var res search.Result
		json.NewDecoder(resp.Body).Decode(&res)
		fmt.Println(resp.StatusCode, len(res.Hits), "hits")
	}
	size := l.Size()
	ask("wrong", "SFC request 17", `{"text":"whatsapp"}`)
	fmt.Println("sealed:", l.Size()-size)
	ask("s3cret", "SFC request 17", `{"text":"whatsapp"}`)
	fmt.Println("sealed:", l.Size()-size)
	// Output:
	// 401 0 hits
	// sealed: 0
	// 200 1 hits
	// sealed: 1
}
