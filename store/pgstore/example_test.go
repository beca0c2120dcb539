package pgstore_test

import (
	"context"
	"fmt"
	"os"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store/pgstore"
	"github.com/commseal/commseal/store/storetest"
)

// A store on PostgreSQL: Append returns once the batch's transaction has committed. (This
// example needs a server, so go test compiles it but does not run it; the package's tests run
// their own server with pgstore/pgtest.)
func Example() {
	ctx := context.Background()
	dsn := os.Getenv("COMMSEAL_PG_DSN") // e.g. postgres://commseal:secret@db.internal:5432/archive
	s, err := pgstore.Open(ctx, dsn, &pgstore.Options{Schema: "hk_equities"})
	if err != nil {
		fmt.Println(err) // names the database and host, never the password
		return
	}
	defer s.Close()
	if err := s.Append(ctx, storetest.BatchAt(0, 3)); err != nil {
		fmt.Println(err)
		return
	}
	n, _ := s.Size(ctx)
	i, found, _ := s.Lookup(ctx, storetest.EntryAt(2).Identity)
	fmt.Println(n, i, found)
}

// An encrypted ledger whose entries and wrapped data keys are both in PostgreSQL: the store is
// also the ledger's key vault. In production the keyring is a KMS or HSM adapter, so that
// retiring its KEKs makes destroyed keys unrecoverable from backups and WAL archives too.
func Example_ledger() {
	ctx := context.Background()
	st, err := pgstore.Open(ctx, os.Getenv("COMMSEAL_PG_DSN"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	skey, _, _ := seal.GenerateSigningKey("example.com/hk-equities")
	signer, _ := seal.ParseSigningKey(skey)
	l, err := ledger.Open(ctx, st, ledger.Options{Signing: signer,
		Encryption: &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: st}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
}
