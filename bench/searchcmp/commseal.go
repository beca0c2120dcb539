package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/search"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store/memstore"
)

// noRecord is the Recorder the timed queries use: it records nothing, so that the times are
// the index's alone. (The ledger's Accessor would seal an access entry per query; the
// "accessor" note measures that separately.)
type noRecord struct{}

func (noRecord) Query(context.Context, string, uint64) error { return nil }

// commseal is ledger/search over a ledger in memory (store/memstore), encrypted unless plain.
type commseal struct {
	plain   bool
	l       *ledger.Ledger
	ix      *search.Index
	msg     map[uint64]int // ledger index -> message number
	prepDur time.Duration
	accP50  time.Duration
}

func (c *commseal) name() string {
	if c.plain {
		return "commseal-plain"
	}
	return "commseal"
}

// appenders append in parallel: the ledger batches concurrent appends.
const appenders = 64

// prepare opens a ledger and appends one message per text.
func (c *commseal) prepare(ctx context.Context, texts []string) error {
	skey, _, err := seal.GenerateSigningKey("commseal.bench/searchcmp")
	if err != nil {
		return err
	}
	keys, err := seal.ParseSigningKey(skey)
	if err != nil {
		return err
	}
	opts := ledger.Options{Signing: keys}
	if !c.plain {
		opts.Encryption = &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: &memstore.KeyVault{}}
	}
	if c.l, err = ledger.Open(ctx, memstore.New(), opts); err != nil {
		return err
	}
	start := time.Now()
	t0 := time.Date(2025, 5, 1, 1, 0, 0, 0, time.UTC)
	idx := make([]uint64, len(texts))
	errs := make([]error, appenders)
	var wg sync.WaitGroup
	for w := range appenders {
		wg.Go(func() {
			for i := w; i < len(texts); i += appenders {
				at := t0.Add(time.Duration(i) * 30 * time.Second)
				conv := i * 7919 % 2000
				m := &capture.Message{
					Platform: capture.PlatformDingTalk, Tenant: "bench", ID: "m-" + strconv.Itoa(i),
					Conversation: capture.Conversation{ID: fmt.Sprintf("cid-%04d", conv), Type: capture.ConversationGroup},
					Sender:       capture.Party{ID: fmt.Sprintf("u%03d", i%500), Name: "Chan Tai Man 陳大文"},
					SentAt:       at, CapturedAt: at.Add(time.Second), Kind: capture.KindText, Text: texts[i],
					Raw: []byte(`{"msgId":"m-` + strconv.Itoa(i) + `"}`),
				}
				rc, err := c.l.Append(ctx, m)
				if err != nil {
					errs[w] = err
					return
				}
				idx[i] = rc.Index
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("appending: %w", err)
		}
	}
	c.msg = make(map[uint64]int, len(texts))
	for i, x := range idx {
		c.msg[x] = i
	}
	c.prepDur = time.Since(start)
	return nil
}

// build is search.Open on the ledger: reading every entry (and, encrypted, decrypting it)
// and building the postings in memory.
func (c *commseal) build(ctx context.Context, _ []string) error {
	var err error
	c.ix, err = search.Open(ctx, c.l, search.Options{})
	return err
}

// text renders q in the query language: terms side by side must all match; a phrase quoted.
func (c *commseal) text(q query) string {
	var parts []string
	for _, t := range q.terms {
		parts = append(parts, strconv.Quote(t))
	}
	return strings.Join(parts, " ")
}

func (c *commseal) top(ctx context.Context, q query) (int, error) {
	res, err := c.ix.Search(ctx, noRecord{}, search.Query{Text: c.text(q), Limit: pageSize})
	if err != nil {
		return 0, err
	}
	return res.Total, nil
}

func (c *commseal) all(ctx context.Context, q query) ([]int, error) {
	var out []int
	for off := 0; ; off += search.MaxLimit {
		res, err := c.ix.Search(ctx, noRecord{}, search.Query{Text: c.text(q), Offset: off, Limit: search.MaxLimit})
		if err != nil {
			return nil, err
		}
		for _, h := range res.Hits {
			i, ok := c.msg[h.Index]
			if !ok {
				return nil, fmt.Errorf("hit at ledger index %d is no message of the corpus", h.Index)
			}
			out = append(out, i)
		}
		if off+search.MaxLimit >= res.Total {
			return out, nil
		}
	}
}

// accessor times queries through the ledger's Accessor, which seals an access entry per
// query (encrypted), for the notes.
func (c *commseal) accessor(ctx context.Context, qs []query, n int) error {
	acc := c.l.Access("bench", "searchcmp")
	var ds []time.Duration
	for i := range n {
		q := qs[i%len(qs)]
		start := time.Now()
		if _, err := c.ix.Search(ctx, acc, search.Query{Text: c.text(q), Limit: pageSize}); err != nil {
			return err
		}
		ds = append(ds, time.Since(start))
	}
	c.accP50 = percentile(ds, 50)
	return nil
}

func (c *commseal) notes() string {
	s := fmt.Sprintf("append %d msgs to the ledger (not in build): %s", len(c.msg), c.prepDur.Round(time.Millisecond))
	if c.plain {
		s += "; unencrypted ledger: build reads and decodes entries, no decryption"
	} else {
		s += "; build decrypts every entry"
	}
	if c.accP50 > 0 {
		s += fmt.Sprintf("; p50 with ledger Accessor (seals an access entry per query): %s", fmtDur(c.accP50))
	}
	return s
}

func (c *commseal) close() error {
	var err error
	if c.ix != nil {
		err = c.ix.Close()
	}
	if c.l != nil {
		if e := c.l.Close(); err == nil {
			err = e
		}
	}
	c.ix, c.l, c.msg = nil, nil, nil
	return err
}
