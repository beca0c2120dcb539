package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/lang/cjk"
	bq "github.com/blevesearch/bleve/v2/search/query"
)

// bleveEngine is bleve v2 in memory (NewMemOnly) with its cjk analyzer (unicode tokenizer,
// width fold, lower case, CJK bigrams). Texts and terms are folded word by word with
// scan.Normalize (so Traditional finds Simplified, as in commseal) keeping the spaces between
// words, which the analyzer needs; a term is a match-phrase query, terms ANDed.
type bleveEngine struct {
	ix bleve.Index
}

func (b *bleveEngine) name() string { return "bleve" }

// batchSize is how many documents one bleve batch indexes.
const batchSize = 5000

func (b *bleveEngine) build(ctx context.Context, texts []string) error {
	fm := bleve.NewTextFieldMapping()
	fm.Analyzer = cjk.AnalyzerName
	fm.Store = false
	fm.IncludeInAll = false
	dm := bleve.NewDocumentStaticMapping()
	dm.AddFieldMappingsAt("text", fm)
	im := bleve.NewIndexMapping()
	im.DefaultMapping = dm
	im.DefaultAnalyzer = cjk.AnalyzerName
	ix, err := bleve.NewMemOnly(im)
	if err != nil {
		return err
	}
	b.ix = ix
	batch := ix.NewBatch()
	for i, t := range texts {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := batch.Index(strconv.Itoa(i), map[string]any{"text": foldWords(t)}); err != nil {
			return err
		}
		if batch.Size() >= batchSize || i == len(texts)-1 {
			if err := ix.Batch(batch); err != nil {
				return err
			}
			batch.Reset()
		}
	}
	return nil
}

func (b *bleveEngine) query(q query) bq.Query {
	var qs []bq.Query
	for _, t := range q.terms {
		p := bleve.NewMatchPhraseQuery(foldWords(t))
		p.SetField("text")
		qs = append(qs, p)
	}
	if len(qs) == 1 {
		return qs[0]
	}
	return bleve.NewConjunctionQuery(qs...)
}

func (b *bleveEngine) top(ctx context.Context, q query) (int, error) {
	res, err := b.ix.SearchInContext(ctx, bleve.NewSearchRequestOptions(b.query(q), pageSize, 0, false))
	if err != nil {
		return 0, err
	}
	return int(res.Total), nil
}

func (b *bleveEngine) all(ctx context.Context, q query) ([]int, error) {
	n, err := b.top(ctx, q)
	if err != nil || n == 0 {
		return nil, err
	}
	res, err := b.ix.SearchInContext(ctx, bleve.NewSearchRequestOptions(b.query(q), n, 0, false))
	if err != nil {
		return nil, err
	}
	out := make([]int, 0, len(res.Hits))
	for _, h := range res.Hits {
		i, err := strconv.Atoi(h.ID)
		if err != nil {
			return nil, fmt.Errorf("bleve hit id %q: %w", h.ID, err)
		}
		out = append(out, i)
	}
	return out, nil
}

func (b *bleveEngine) notes() string {
	return "texts and terms folded word by word (scan.Normalize), fold time in build; batches of 5000"
}

func (b *bleveEngine) close() error {
	if b.ix == nil {
		return nil
	}
	err := b.ix.Close()
	b.ix = nil
	return err
}
