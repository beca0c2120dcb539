package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/ncruces/go-sqlite3"
	sqlfts5 "github.com/ncruces/go-sqlite3/ext/fts5"
)

// fts5 is SQLite FTS5 with the trigram tokenizer (case_sensitive 0) in an in-memory database,
// through github.com/ncruces/go-sqlite3 (no cgo). With folded set it indexes and queries the
// texts folded as commseal folds them (scan.Normalize); else the raw texts.
type fts5 struct {
	folded bool
	db     *sqlite3.Conn
	size   int64 // database bytes after build
}

func (f *fts5) name() string {
	if f.folded {
		return "fts5"
	}
	return "fts5-raw"
}

func (f *fts5) prep(s string) string {
	if f.folded {
		return fold(s)
	}
	return s
}

func (f *fts5) build(ctx context.Context, texts []string) error {
	db, err := sqlite3.OpenContext(ctx, ":memory:")
	if err != nil {
		return err
	}
	f.db = db
	if err := sqlfts5.Register(db); err != nil {
		return err
	}
	if err := db.Exec(`CREATE VIRTUAL TABLE t USING fts5(body, tokenize = 'trigram case_sensitive 0')`); err != nil {
		return err
	}
	if err := db.Exec(`BEGIN`); err != nil {
		return err
	}
	st, _, err := db.Prepare(`INSERT INTO t(rowid, body) VALUES (?, ?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for i, t := range texts {
		if i%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if err := st.BindInt(1, i+1); err != nil {
			return err
		}
		if err := st.BindText(2, f.prep(t)); err != nil {
			return err
		}
		if err := st.Exec(); err != nil {
			return fmt.Errorf("inserting message %d: %w", i, err)
		}
	}
	if err := db.Exec(`COMMIT`); err != nil {
		return err
	}
	pages, err := f.scalar(`PRAGMA page_count`, "")
	if err != nil {
		return err
	}
	pageSize, err := f.scalar(`PRAGMA page_size`, "")
	if err != nil {
		return err
	}
	f.size = pages * pageSize
	return nil
}

// match renders q as an FTS5 query: each term a string (trigrams in order), ANDed.
func (f *fts5) match(q query) string {
	var parts []string
	for _, t := range q.terms {
		parts = append(parts, `"`+strings.ReplaceAll(f.prep(t), `"`, `""`)+`"`)
	}
	return strings.Join(parts, " AND ")
}

// scalar runs a query with at most one text parameter and returns its first integer.
func (f *fts5) scalar(sql, arg string) (int64, error) {
	st, _, err := f.db.Prepare(sql)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	if arg != "" {
		if err := st.BindText(1, arg); err != nil {
			return 0, err
		}
	}
	var v int64
	if st.Step() {
		v = st.ColumnInt64(0)
	}
	return v, st.Err()
}

// rows runs a MATCH query returning rowids and returns them as message numbers.
func (f *fts5) rows(sql, arg string) ([]int, error) {
	st, _, err := f.db.Prepare(sql)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := st.BindText(1, arg); err != nil {
		return nil, err
	}
	var out []int
	for st.Step() {
		out = append(out, int(st.ColumnInt64(0))-1)
	}
	return out, st.Err()
}

func (f *fts5) top(_ context.Context, q query) (int, error) {
	m := f.match(q)
	n, err := f.scalar(`SELECT count(*) FROM t WHERE t MATCH ?`, m)
	if err != nil {
		return 0, err
	}
	if _, err := f.rows(`SELECT rowid FROM t WHERE t MATCH ? LIMIT 100`, m); err != nil {
		return 0, err
	}
	return int(n), nil
}

func (f *fts5) all(_ context.Context, q query) ([]int, error) {
	return f.rows(`SELECT rowid FROM t WHERE t MATCH ?`, f.match(q))
}

func (f *fts5) notes() string {
	s := fmt.Sprintf("in-memory DB %.1f MB", float64(f.size)/1e6)
	if f.folded {
		s += "; texts and terms folded by scan.Normalize (fold time in build)"
	} else {
		s += "; raw texts (no Traditional/Simplified or width fold)"
	}
	return s
}

func (f *fts5) close() error {
	if f.db == nil {
		return nil
	}
	err := f.db.Close()
	f.db = nil
	return err
}
